"""The video builders' shared part: decode with PyAV, store JPEG frames, skip and report bad files.

A concrete builder (datasets/<name>/<name>_dataset_builder.py) subclasses `VideoBuilder` and
implements `_split_items(manual_dir, skipped)`: the class names and, per split, the
(key, path, label) items (see `manual_builder.ManualDataBuilder`). Items become TFDS examples

    {"video": [T] JPEG frames, "label": class index (-1: unlabelled), "id": key, "fps": float32}

with frames decoded by `video_decode.decode_video` (short side and fps from the builder config).
A missing, zero-byte, truncated or undecodable video is skipped, never fatal: it is logged and
listed in `<data_dir>/skipped_<split>.jsonl` (`{"key", "path", "reason"}` per line; see
`examples`), with or without Apache Beam.
"""

import dataclasses
import os
from typing import Any

import cv2
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

from cover_tf.builders.examples import (  # noqa: F401 (re-exported for the builders and tests)
    SKIPPED_REPORT_PATTERN,
    Item,
    SkipItem,
    read_skip_report,
)
from cover_tf.builders.manual_builder import ManualDataBuilder, require_file  # noqa: F401
from cover_tf.builders.video_decode import VideoDecodeError, decode_video
from cover_tf.workdir import is_local

VideoItem = Item  # The name the video builders use.
_UNSET = object()


@dataclasses.dataclass(eq=False)
class VideoBuilderConfig(tfds.core.BuilderConfig):
    """A video builder config: which videos, and how they are stored.

    Args:
      short_side: frames are resized so that the shorter side has this many pixels (aspect ratio
        kept); None keeps the decoded size. Default 256.
      fps: frame rate of the stored frames (subsampled by timestamps, never upsampled); None keeps
        the source's. Default None.
      jpeg_quality: JPEG quality of the stored frames, 1-100. Default 90.
      max_frames: keep at most this many frames per video; None keeps all. Default None.
    """

    short_side: int | None = 256
    fps: float | None = None
    jpeg_quality: int = 90
    max_frames: int | None = None

    def __post_init__(self):
        if self.short_side is not None and self.short_side <= 0:
            raise ValueError(f"short_side must be positive or None, got {self.short_side!r}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be positive or None, got {self.fps!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality!r}")


def video_features(class_names: list[str] | None = None) -> tfds.features.FeaturesDict:
    """The features of every video builder; `class_names` may be set later (from annotations)."""
    label = (
        tfds.features.ClassLabel(names=class_names) if class_names else tfds.features.ClassLabel()
    )
    return tfds.features.FeaturesDict(
        {
            "video": tfds.features.Video(shape=(None, None, None, 3), encoding_format="jpeg"),
            "label": label,
            "id": tfds.features.Text(),
            "fps": np.float32,
        }
    )


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of one uint8 RGB image [H, W, 3] (OpenCV: the fastest measured here)."""
    ok, buffer = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return buffer.tobytes()


def encode_jpeg_frames(frames: np.ndarray, quality: int = 90) -> list[bytes]:
    """JPEG bytes of every frame of a uint8 RGB video [T, H, W, 3]."""
    return [encode_jpeg(frame, quality) for frame in frames]


@dataclasses.dataclass(frozen=True)
class VideoExampleEncoder:
    """Turns one video file into an example; a file that does not decode raises `SkipItem`.

    Picklable (Beam workers unpickle it by reference from this module).

    Args:
      short_side, fps, max_frames: passed to `decode_video`.
      jpeg_quality: quality of the stored JPEG frames.
    """

    short_side: int | None = 256
    fps: float | None = None
    max_frames: int | None = None
    jpeg_quality: int = 90

    def __call__(self, item: Item) -> dict[str, Any]:
        try:
            frames, fps = decode_video(
                item.path, short_side=self.short_side, fps=self.fps, max_frames=self.max_frames
            )
        except VideoDecodeError as error:
            raise SkipItem(error.reason) from error
        return {
            "video": encode_jpeg_frames(frames, self.jpeg_quality),
            "label": item.label,
            "id": item.key,
            "fps": np.float32(fps),
        }


class VideoBuilder(ManualDataBuilder, skip_registration=True):
    """Base of the video builders: features, splits and the skip-and-report example generation.

    Subclasses set `VERSION`, `RELEASE_NOTES`, `BUILDER_CONFIGS` (of `VideoBuilderConfig`),
    `MANUAL_DOWNLOAD_INSTRUCTIONS`, and implement `_split_items(manual_dir, skipped)` returning
    `(class_names, {split: [VideoItem]})`; unusable annotation rows go to `skipped.add(...)`.

    Args (keyword, besides TFDS's data_dir / config / version):
      short_side, fps, jpeg_quality, max_frames: override the config's field; the config then
        gets a derived name (e.g. "400_short128_fps8") so differently prepared data do not mix.
    """

    def __init__(
        self,
        *,
        short_side=_UNSET,
        fps=_UNSET,
        jpeg_quality=_UNSET,
        max_frames=_UNSET,
        **kwargs,
    ):
        overrides = {
            "short_side": short_side,
            "fps": fps,
            "jpeg_quality": jpeg_quality,
            "max_frames": max_frames,
        }
        self._config_overrides = {k: v for k, v in overrides.items() if v is not _UNSET}
        super().__init__(**kwargs)

    def _create_builder_config(self, builder_config, version):
        config = super()._create_builder_config(builder_config, version)
        overrides = {
            key: value
            for key, value in getattr(self, "_config_overrides", {}).items()
            if getattr(config, key) != value
        }
        if not overrides:
            return config
        suffix = "_".join(
            f"{key.replace('_side', '').replace('jpeg_', '')}{_short(value)}"
            for key, value in sorted(overrides.items())
        )
        return dataclasses.replace(config, name=f"{config.name}_{suffix}", **overrides)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=video_features(),
            supervised_keys=("video", "label"),
        )

    def _example_encoder(self) -> VideoExampleEncoder:
        config = self.builder_config
        return VideoExampleEncoder(
            short_side=config.short_side,
            fps=config.fps,
            max_frames=config.max_frames,
            jpeg_quality=config.jpeg_quality,
        )


def _short(value) -> str:
    if value is None:
        return "src"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def index_files(root, suffixes: tuple[str, ...]) -> dict[str, epath.Path]:
    """{file name: path} of the files under `root` (any depth) whose suffix is in `suffixes`.

    Lets a builder find `<id>.mp4` whether the split folder is flat or has one folder per class.
    A name found twice keeps the first path in sorted order. A local folder is walked with
    `os.walk`, which keeps names that are not UTF-8 (`tf.io.gfile.walk` raises on them).
    """
    found: dict[str, epath.Path] = {}
    root = epath.Path(root)
    if not root.is_dir():
        return found
    walk = os.walk if is_local(os.fspath(root)) else tf.io.gfile.walk
    for directory, _, names in sorted(walk(os.fspath(root))):
        for name in sorted(names):
            if epath.Path(name).suffix.lower() in suffixes and name not in found:
                found[name] = epath.Path(directory) / name
    return found
