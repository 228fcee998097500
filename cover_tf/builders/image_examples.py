"""Images as examples for the image builders: read with PIL, optional resize, RGB JPEG bytes."""

import dataclasses
import io
from typing import Any

import numpy as np
import PIL.Image
from etils import epath

from cover_tf.builders.examples import Item, SkipItem
from cover_tf.builders.video_builder import encode_jpeg
from cover_tf.builders.video_decode import resized_shape


def read_image(path, short_side: int | None) -> np.ndarray:
    """uint8 RGB [H, W, 3] of an image file; raises on unreadable files."""
    with PIL.Image.open(io.BytesIO(epath.Path(path).read_bytes())) as image:
        image = image.convert("RGB")
        if short_side is not None:
            height, width = resized_shape(image.height, image.width, short_side)
            image = image.resize((width, height), PIL.Image.BILINEAR)
        return np.asarray(image)


@dataclasses.dataclass(frozen=True)
class ImageExampleEncoder:
    """Turns one image file into `{"image": JPEG bytes, "label", "id"}`; `SkipItem` if unreadable.

    Picklable (Beam workers unpickle it by reference from this module).

    Args:
      short_side: resize so the shorter side has this many pixels; None keeps the size.
      jpeg_quality: quality of the stored JPEG (every image is re-encoded as RGB JPEG).
    """

    short_side: int | None = None
    jpeg_quality: int = 90

    def __call__(self, item: Item) -> dict[str, Any]:
        try:
            pixels = read_image(item.path, self.short_side)
        except FileNotFoundError:
            raise SkipItem("file not found") from None
        except PIL.UnidentifiedImageError:  # Its message holds a memory address: not reproducible.
            raise SkipItem("UnidentifiedImageError: not an image PIL can read") from None
        except (OSError, ValueError, PIL.Image.DecompressionBombError) as error:
            raise SkipItem(f"{type(error).__name__}: {error}") from error
        return {
            "image": encode_jpeg(pixels, self.jpeg_quality),
            "label": item.label,
            "id": item.key,
        }
