"""Moments in Time from its official annotation files (manual download)."""

import csv
import io

import tensorflow_datasets as tfds
from etils import epath

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
    for row in csv.reader(io.StringIO(path.read_text())):
        if row:
            pairs.append((int(row[-1]), ",".join(row[:-1])))
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

    def _split_items(self, manual_dir: epath.Path):
        class_names = read_categories(
            require_file(manual_dir / "moments_categories.txt", "Moments in Time categories")
        )
        index = {name: i for i, name in enumerate(class_names)}
        splits = {}
        for split, (csv_name, folder) in _SPLITS.items():
            csv_path = require_file(manual_dir / csv_name, f"Moments in Time {split} annotations")
            items = []
            for row in csv.reader(io.StringIO(csv_path.read_text())):
                if not row:
                    continue
                relative, label = row[0], row[1]
                if label not in index:
                    raise ValueError(f"{str(csv_path)!r}: label {label!r} is not a category")
                key = relative.rsplit(".", 1)[0]
                items.append(VideoItem(key, manual_dir / folder / relative, index[label]))
            splits[split] = items
        return class_names, splits
