"""Kinetics-400/600/700 from the public mirror layout (manual download)."""

import csv
import dataclasses
import io

import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from cover_tf.builders.examples import SkipLog
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


def read_annotations(path: epath.Path) -> list[tuple[int, dict[str, str | None]]]:
    """(line number, row) of a Kinetics CSV (`label,youtube_id,time_start,time_end,split[,is_cc]`).

    A header without youtube_id, time_start or time_end is an error naming the file; a short row
    has None for its missing columns (see `clip_key`).
    """
    reader = csv.DictReader(io.StringIO(path.read_text()))
    required = {"youtube_id", "time_start", "time_end"}
    if reader.fieldnames is not None and not required <= set(reader.fieldnames):
        raise ValueError(
            f"{str(path)!r}: expected columns {sorted(required)} (and 'label'), "
            f"got {sorted(reader.fieldnames)}"
        )
    return [(reader.line_num, row) for row in reader]


def clip_key(row: dict[str, str | None]) -> str:
    """`{youtube_id}_{time_start:06d}_{time_end:06d}`, the file stem of a clip.

    Raises ValueError saying what is wrong with a malformed row (missing or non-numeric field).
    """
    missing = [c for c in ("youtube_id", "time_start", "time_end") if not row.get(c)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    times = []
    for column in ("time_start", "time_end"):
        try:
            times.append(int(float(row[column])))
        except (ValueError, OverflowError):
            raise ValueError(f"{column} {row[column]!r} is not a number") from None
    return f"{row['youtube_id']}_{times[0]:06d}_{times[1]:06d}"


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

    def _split_items(self, manual_dir: epath.Path, skipped: SkipLog):
        train_csv = require_file(manual_dir / _SPLITS["train"][0], "Kinetics train annotations")
        require_file(manual_dir / _SPLITS["validation"][0], "Kinetics validation annotations")
        rows = {}
        for split, (csv_name, _) in _SPLITS.items():
            if (manual_dir / csv_name).exists():
                rows[split] = read_annotations(manual_dir / csv_name)
            else:
                logging.info("No %s: the %s split is not built", manual_dir / csv_name, split)
        class_names = sorted({row["label"] for _, row in rows["train"] if row.get("label")})
        if len(class_names) != self.builder_config.num_classes:
            logging.warning(
                "Kinetics-%s: %s holds %d classes",
                self.builder_config.name,
                train_csv,
                len(class_names),
            )
        label_index = {name: i for i, name in enumerate(class_names)}
        splits = {}
        for split, split_rows in rows.items():
            csv_path, folder = manual_dir / _SPLITS[split][0], manual_dir / _SPLITS[split][1]
            files = index_files(folder, _VIDEO_SUFFIXES)
            items = []
            for line, row in split_rows:
                try:
                    key = clip_key(row)
                except ValueError as error:
                    row_id = row.get("youtube_id") or f"{csv_path.name}:{line}"
                    skipped.add(split, row_id, csv_path, f"line {line}: malformed row: {error}")
                    continue
                label = row.get("label") or ""
                if split == "train" and not label:
                    skipped.add(split, key, csv_path, f"line {line}: no label in a train row")
                    continue
                if label and label not in label_index:
                    reason = f"line {line}: label {label!r} is not one of the train classes"
                    skipped.add(split, key, csv_path, reason)
                    continue
                path = next(
                    (files[key + s] for s in _VIDEO_SUFFIXES if key + s in files),
                    folder / f"{key}.mp4",
                )
                items.append(VideoItem(key, path, label_index[label] if label else -1))
            splits[split] = items
        return class_names, splits
