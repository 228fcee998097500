"""Kinetics-400/600/700 from the public mirror layout (manual download)."""

import csv
import dataclasses
import io

import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from cover_tf.builders.video_builder import (
    VideoBuilder,
    VideoBuilderConfig,
    VideoItem,
    index_files,
    require_file,
)

# split name -> (annotation file, video folder), relative to manual_dir.
_SPLITS = {
    "train": ("annotations/train.csv", "train"),
    "validation": ("annotations/val.csv", "val"),
    "test": ("annotations/test.csv", "test"),
}
_VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi")


@dataclasses.dataclass(eq=False)
class KineticsConfig(VideoBuilderConfig):
    """A Kinetics release.

    Args:
      num_classes: classes of the release; a train CSV with another count is logged, not fatal.
      (and the VideoBuilderConfig fields: short_side, fps, jpeg_quality, max_frames.)
    """

    num_classes: int = 400


def read_annotations(path: epath.Path) -> list[dict[str, str]]:
    """Rows of a Kinetics CSV (`label,youtube_id,time_start,time_end,split[,is_cc]`)."""
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    required = {"youtube_id", "time_start", "time_end"}
    if rows and not required <= set(rows[0]):
        raise ValueError(
            f"{str(path)!r}: expected columns {sorted(required)} (and 'label'), "
            f"got {sorted(rows[0])}"
        )
    return rows


def clip_key(row: dict[str, str]) -> str:
    """`{youtube_id}_{time_start:06d}_{time_end:06d}`, the file stem of a clip."""
    start, end = int(float(row["time_start"])), int(float(row["time_end"]))
    return f"{row['youtube_id']}_{start:06d}_{end:06d}"


class Builder(VideoBuilder):
    """DatasetBuilder for Kinetics-400/600/700 (configs "400", "600", "700").

    Splits: train, validation (from val.csv), test. Test rows without a label get label -1
    (TFDS's "no label"). Missing or bad videos are skipped and listed in skipped_<split>.jsonl.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        KineticsConfig(name=str(n), num_classes=n, description=f"Kinetics-{n}")
        for n in (400, 600, 700)
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download Kinetics (e.g. the CVDF mirror, https://github.com/cvdfoundation/kinetics-dataset)
    and pass its root as --manual_dir:
      annotations/train.csv  annotations/val.csv  annotations/test.csv (optional)
      train/  val/  test/    videos {youtube_id}_{time_start:06d}_{time_end:06d}.mp4,
                             flat or one folder per class
    """
    pkg_dir_path = epath.Path(__file__).parent

    def _split_items(self, manual_dir: epath.Path):
        train_csv = require_file(manual_dir / _SPLITS["train"][0], "Kinetics train annotations")
        require_file(manual_dir / _SPLITS["validation"][0], "Kinetics validation annotations")
        class_names = sorted({row["label"] for row in read_annotations(train_csv)})
        if len(class_names) != self.builder_config.num_classes:
            logging.warning(
                "Kinetics-%s: %s holds %d classes",
                self.builder_config.name,
                train_csv,
                len(class_names),
            )
        label_index = {name: i for i, name in enumerate(class_names)}
        splits = {}
        for split, (csv_name, folder) in _SPLITS.items():
            csv_path = manual_dir / csv_name
            if not csv_path.exists():
                logging.info("No %s: the %s split is not built", csv_path, split)
                continue
            files = index_files(manual_dir / folder, _VIDEO_SUFFIXES)
            items = []
            for row in read_annotations(csv_path):
                key = clip_key(row)
                label = row.get("label") or ""
                if label and label not in label_index:
                    raise ValueError(f"{str(csv_path)!r}: label {label!r} is not in {train_csv}")
                path = next(
                    (files[key + s] for s in _VIDEO_SUFFIXES if key + s in files),
                    manual_dir / folder / f"{key}.mp4",
                )
                items.append(VideoItem(key, path, label_index[label] if label else -1))
            splits[split] = items
        return class_names, splits
