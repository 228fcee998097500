"""Something-Something-v2 from its official annotation files (manual download)."""

import json

import tensorflow_datasets as tfds
from etils import epath

from cover_tf.builders.video_builder import (
    VideoBuilder,
    VideoBuilderConfig,
    VideoItem,
    require_file,
)

# split name -> annotation file; a split whose file is absent (test) is not built.
_SPLITS = {"train": "train.json", "validation": "validation.json", "test": "test.json"}
_SUBFOLDER = "20bn-something-something-v2"


def template_class(template: str) -> str:
    """The class of an annotation: its template without brackets."""
    return template.replace("[", "").replace("]", "")


class Builder(VideoBuilder):
    """DatasetBuilder for Something-Something-v2 (174 classes, VP9 webm videos).

    Classes and their indices come from labels.json. Splits: train, validation; test when
    test.json is present (its entries have no template: label -1). Never train it with horizontal
    flips: classes such as "Pushing something from left to right" depend on direction.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        VideoBuilderConfig(name="default", description="Short side 256, source fps.")
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download Something-Something-v2 (Qualcomm) and pass as --manual_dir the folder holding
      labels.json  train.json  validation.json  (test.json optional)
      the videos {id}.webm, in the same folder or in 20bn-something-something-v2/
    """
    pkg_dir_path = epath.Path(__file__).parent

    def _split_items(self, manual_dir: epath.Path):
        labels = json.loads(require_file(manual_dir / "labels.json", "SSv2 labels").read_text())
        index = {name: int(i) for name, i in labels.items()}
        if sorted(index.values()) != list(range(len(index))):
            raise ValueError(f"labels.json indices must be 0..{len(index) - 1}, got {labels}")
        class_names = sorted(index, key=index.get)
        video_dir = manual_dir / _SUBFOLDER if (manual_dir / _SUBFOLDER).is_dir() else manual_dir
        splits = {}
        for split, file_name in _SPLITS.items():
            path = manual_dir / file_name
            if split != "test":
                require_file(path, f"SSv2 {split} annotations")
            elif not path.exists():
                continue
            items = []
            for entry in json.loads(path.read_text()):
                label = -1
                if "template" in entry:
                    name = template_class(entry["template"])
                    if name not in index:
                        raise ValueError(f"{str(path)!r}: class {name!r} is not in labels.json")
                    label = index[name]
                video_id = str(entry["id"])
                items.append(VideoItem(video_id, video_dir / f"{video_id}.webm", label))
            splits[split] = items
        return class_names, splits
