"""The machinery every video dataset builder shares: decode, JPEG-encode, skip and report bad files.

A concrete builder (datasets/<name>/<name>_dataset_builder.py) subclasses `VideoBuilder` and
implements `_split_items(manual_dir)`: the class names and, per split, the (key, path, label)
items. This module turns items into TFDS examples

    {"video": [T] JPEG frames, "label": class index (-1: unlabelled), "id": key, "fps": float32}

with frames decoded by `video_decode.decode_video` (short side and fps from the builder config).
A missing, zero-byte, truncated or undecodable video is skipped, never fatal: it is counted, logged
and listed in `<data_dir>/skipped_<split>.jsonl` (one JSON object per line:
`{"key", "path", "reason"}`), written next to the prepared data (an empty file: nothing skipped).
"""

import concurrent.futures
import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import cv2
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from cover_tf.builders.video_decode import VideoDecodeError, decode_video

SKIPPED_REPORT_PATTERN = "skipped_{split}.jsonl"
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


class VideoItem(NamedTuple):
    """One video to store: `key` (unique, the example's "id"), `path`, `label` (index, -1: none)."""

    key: str
    path: epath.Path
    label: int


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


class SkipReport:
    """Collects the files a split skipped; `write()` lists them in a JSON-lines file and logs.

    Args:
      path: the report file (`skipped_<split>.jsonl` in the prepared data's directory).
      split: split name, for the log line.
    """

    def __init__(self, path, split: str):
        self.path = epath.Path(path)
        self.split = split
        self.entries: list[dict[str, str]] = []
        self.kept = 0

    def add(self, key: str, path, reason: str) -> None:
        logging.warning("Skipping %s (%s): %s", key, path, reason)
        self.entries.append({"key": key, "path": os.fspath(path), "reason": reason})

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in self.entries)
        self.path.write_text(lines)
        logging.info(
            "Split %s: kept %d, skipped %d; report: %s",
            self.split,
            self.kept,
            len(self.entries),
            self.path,
        )


def read_skip_report(path) -> list[dict[str, str]]:
    """The entries of a `skipped_<split>.jsonl` report."""
    text = epath.Path(path).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _decode_item(item: VideoItem, config: VideoBuilderConfig) -> dict[str, Any]:
    frames, fps = decode_video(
        item.path, short_side=config.short_side, fps=config.fps, max_frames=config.max_frames
    )
    return {
        "video": encode_jpeg_frames(frames, config.jpeg_quality),
        "label": item.label,
        "id": item.key,
        "fps": np.float32(fps),
    }


def generate_video_examples(
    items: Iterable[VideoItem],
    *,
    config: VideoBuilderConfig,
    report: SkipReport,
    num_workers: int | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yields (key, example) in sorted key order; bad files go to `report` (written at the end).

    Decoding runs on `num_workers` threads (PyAV and OpenCV release the GIL; default: CPU count),
    at most 2 * num_workers videos ahead of the consumer.
    """
    unique: dict[str, VideoItem] = {}
    for item in items:
        if item.key in unique:  # A repeated annotation row: keep the first, report the rest.
            report.add(item.key, item.path, f"duplicate key (first: {unique[item.key].path})")
        else:
            unique[item.key] = item
    items = [unique[key] for key in sorted(unique)]
    num_workers = num_workers or min(4, os.cpu_count() or 1)
    window = 2 * num_workers
    with concurrent.futures.ThreadPoolExecutor(num_workers) as pool:
        futures = [pool.submit(_decode_item, item, config) for item in items[:window]]
        for index, item in enumerate(items):
            if index + window < len(items):
                futures.append(pool.submit(_decode_item, items[index + window], config))
            try:
                example = futures[index].result()
            except VideoDecodeError as error:
                report.add(item.key, item.path, error.reason)
                continue
            finally:
                futures[index] = None  # Free the frames.
            report.kept += 1
            yield item.key, example
    report.write()


class VideoBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the video builders: features, splits and the skip-and-report example generation.

    Subclasses set `VERSION`, `RELEASE_NOTES`, `BUILDER_CONFIGS` (of `VideoBuilderConfig`),
    `MANUAL_DOWNLOAD_INSTRUCTIONS`, and implement `_split_items(manual_dir)` returning
    `(class_names, {split: [VideoItem]})`.

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

    def _split_items(self, manual_dir: epath.Path) -> tuple[list[str], dict[str, list[VideoItem]]]:
        raise NotImplementedError

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = epath.Path(dl_manager.manual_dir)
        if not manual_dir.is_dir():
            raise FileNotFoundError(
                f"{self.name}: manual_dir {os.fspath(manual_dir)!r} is not a directory. "
                f"Expected layout:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        class_names, splits = self._split_items(manual_dir)
        self.info.features["label"].names = list(class_names)
        return {name: self._generate_examples(items, name) for name, items in splits.items()}

    def _generate_examples(self, items: list[VideoItem], split: str):
        report = SkipReport(
            epath.Path(self.data_dir) / SKIPPED_REPORT_PATTERN.format(split=split), split
        )
        yield from generate_video_examples(items, config=self.builder_config, report=report)


def _short(value) -> str:
    if value is None:
        return "src"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def require_file(path, what: str) -> epath.Path:
    """`path` as an epath.Path; FileNotFoundError naming the expected path when it is missing."""
    path = epath.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: expected {os.fspath(path)!r}")
    return path


def index_files(root, suffixes: tuple[str, ...]) -> dict[str, epath.Path]:
    """{file name: path} of the files under `root` (any depth) whose suffix is in `suffixes`.

    Lets a builder find `<id>.mp4` whether the split folder is flat or has one folder per class.
    A name found twice keeps the first path in sorted order.
    """
    found: dict[str, epath.Path] = {}
    root = epath.Path(root)
    if not root.is_dir():
        return found
    for directory, _, names in sorted(tf.io.gfile.walk(os.fspath(root))):
        for name in sorted(names):
            if epath.Path(name).suffix.lower() in suffixes and name not in found:
                found[name] = epath.Path(directory) / name
    return found
