"""Moments in Time from its official annotation files (manual download)."""

import csv
import io

import tensorflow_datasets as tfds
from etils import epath

from cover_tf.builders.examples import SkipLog
from cover_tf.builders.video_builder import (
    VideoBuilder,
    VideoBuilderConfig,
    VideoItem,
    require_file,
)

# split name -> (annotation file, video folder).
_SPLITS = {
    "train": ("trainingSet.csv", "training"),
    "validation": ("validationSet.csv", "validation"),
}


def read_categories(path: epath.Path) -> list[str]:
    """Class names in index order from `moments_categories.txt` (lines `name,index`)."""
    pairs = []
    for line, row in enumerate(csv.reader(io.StringIO(path.read_text())), start=1):
        if not row:
            continue
        try:
            pairs.append((int(row[-1]), ",".join(row[:-1])))
        except ValueError:
            raise ValueError(
                f"{str(path)!r} line {line}: expected 'name,index', got {row}"
            ) from None
    if sorted(i for i, _ in pairs) != list(range(len(pairs))):
        raise ValueError(f"{str(path)!r}: indices must be 0..{len(pairs) - 1}")
    return [name for _, name in sorted(pairs)]


class Builder(VideoBuilder):
    """DatasetBuilder for Moments in Time (339 classes in v1, 305 in v2; 3-second mp4 clips).

    Splits: train (trainingSet.csv, videos under training/), validation (validationSet.csv,
    videos under validation/). Keys are the relative paths without suffix.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        VideoBuilderConfig(name="default", description="Short side 256, source fps.")
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download Moments in Time (http://moments.csail.mit.edu) and pass as --manual_dir the folder
    holding moments_categories.txt, trainingSet.csv, validationSet.csv, training/, validation/.
    """
    pkg_dir_path = epath.Path(__file__).parent

    def _split_items(self, manual_dir: epath.Path, skipped: SkipLog):
        class_names = read_categories(
            require_file(manual_dir / "moments_categories.txt", "Moments in Time categories")
        )
        index = {name: i for i, name in enumerate(class_names)}
        splits = {}
        for split, (csv_name, folder) in _SPLITS.items():
            csv_path = require_file(manual_dir / csv_name, f"Moments in Time {split} annotations")
            items = []
            for line, row in enumerate(csv.reader(io.StringIO(csv_path.read_text())), start=1):
                if not row:
                    continue
                if len(row) < 2 or not row[0].strip():
                    where = f"{csv_name}:{line}"
                    skipped.add(split, where, csv_path, f"line {line}: malformed row {row!r:.200}")
                    continue
                relative, label = row[0], row[1]
                key = relative.rsplit(".", 1)[0]
                if label not in index:
                    reason = f"line {line}: label {label!r} is not a category"
                    skipped.add(split, key, csv_path, reason)
                    continue
                items.append(VideoItem(key, manual_dir / folder / relative, index[label]))
            splits[split] = items
        return class_names, splits
