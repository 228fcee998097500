"""image_folder: any `root/<split>/<class>/<image>` tree of jpg/png images, e.g. a user's own."""

import dataclasses
import io

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from etils import epath

from cover_tf.builders.class_folders import list_class_folders
from cover_tf.builders.video_builder import SKIPPED_REPORT_PATTERN, SkipReport, encode_jpeg
from cover_tf.builders.video_decode import resized_shape

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclasses.dataclass(eq=False)
class ImageFolderConfig(tfds.core.BuilderConfig):
    """How images are stored.

    Args:
      short_side: resize so the shorter side has this many pixels; None keeps the size.
      jpeg_quality: quality of the stored JPEGs (every image is re-encoded as RGB JPEG).
    """

    short_side: int | None = None
    jpeg_quality: int = 90


def list_split(split_dir: epath.Path) -> dict[str, list[epath.Path]]:
    """{class folder name: sorted file paths} of one split folder (other files ignored)."""
    return list_class_folders(split_dir, IMAGE_SUFFIXES)


def read_image(path: epath.Path, short_side: int | None) -> np.ndarray:
    """uint8 RGB [H, W, 3] of an image file; raises on unreadable files."""
    with PIL.Image.open(io.BytesIO(path.read_bytes())) as image:
        image = image.convert("RGB")
        if short_side is not None:
            height, width = resized_shape(image.height, image.width, short_side)
            image = image.resize((width, height), PIL.Image.BILINEAR)
        return np.asarray(image)


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for a folder of images, one sub-folder per split and per class.

    Every sub-folder of manual_dir is a split (`train` required, defines the classes). Images are
    re-encoded as RGB JPEG; unreadable ones are skipped and listed in skipped_<split>.jsonl.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [ImageFolderConfig(name="default", description="Original size.")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Pass the root of your images as --manual_dir, laid out as
      <root>/train/<class>/<image>   (required; defines the classes)
      <root>/<other split>/<class>/<image>   (optional)
    """
    pkg_dir_path = epath.Path(__file__).parent

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(),
                "id": tfds.features.Text(),
            }
        )
        return self.dataset_info_from_configs(features=features, supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = epath.Path(dl_manager.manual_dir)
        train_dir = manual_dir / "train"
        if not train_dir.is_dir():
            raise FileNotFoundError(
                f"image_folder: expected a train split folder {str(train_dir)!r} "
                f"(layout <root>/<split>/<class>/<image>)"
            )
        class_names = sorted(list_split(train_dir))
        self.info.features["label"].names = class_names
        splits = {}
        for split_dir in sorted(p for p in manual_dir.iterdir() if p.is_dir()):
            items = []
            for class_name, paths in list_split(split_dir).items():
                if class_name not in class_names:
                    raise ValueError(
                        f"image_folder: class folder {str(split_dir / class_name)!r} is not one "
                        f"of the train classes {class_names}"
                    )
                items += [
                    (f"{class_name}/{p.name}", p, class_names.index(class_name)) for p in paths
                ]
            splits[split_dir.name] = self._generate_examples(items, split_dir.name)
        return splits

    def _generate_examples(self, items, split: str):
        config = self.builder_config
        report = SkipReport(
            epath.Path(self.data_dir) / SKIPPED_REPORT_PATTERN.format(split=split), split
        )
        for key, path, label in sorted(items):
            try:
                pixels = read_image(path, config.short_side)
            except (OSError, ValueError, PIL.Image.DecompressionBombError) as error:
                report.add(key, path, f"{type(error).__name__}: {error}")
                continue
            report.kept += 1
            yield (
                key,
                {"image": encode_jpeg(pixels, config.jpeg_quality), "label": label, "id": key},
            )
        report.write()
