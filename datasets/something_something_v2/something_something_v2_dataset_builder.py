"""Something-Something-v2 from its official annotation files (manual download)."""

import json

import tensorflow_datasets as tfds
from etils import epath

from cover_tf.builders.examples import SkipLog
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

    def _split_items(self, manual_dir: epath.Path, skipped: SkipLog):
        labels_path = require_file(manual_dir / "labels.json", "SSv2 labels")
        labels = _read_json(labels_path)
        try:
            index = {name: int(i) for name, i in labels.items()}
        except (AttributeError, TypeError, ValueError):
            index = {}
        if not index or sorted(index.values()) != list(range(len(index))):
            raise ValueError(
                f"{str(labels_path)!r}: expected {{template: index}} with indices 0..N-1"
            )
        class_names = sorted(index, key=index.get)
        video_dir = manual_dir / _SUBFOLDER if (manual_dir / _SUBFOLDER).is_dir() else manual_dir
        splits = {}
        for split, file_name in _SPLITS.items():
            path = manual_dir / file_name
            if split != "test":
                require_file(path, f"SSv2 {split} annotations")
            elif not path.exists():
                continue
            entries = _read_json(path)
            if not isinstance(entries, list):
                raise ValueError(f"{str(path)!r}: expected a list of entries")
            items = []
            for position, entry in enumerate(entries):
                if not isinstance(entry, dict) or not entry.get("id"):
                    where = f"entry {position}"
                    skipped.add(split, where, path, f"{where}: no 'id' in {entry!r:.200}")
                    continue
                video_id = str(entry["id"])
                label = -1
                if split != "test":
                    if not isinstance(entry.get("template"), str):
                        reason = f"entry {position}: no 'template' in a {split} entry"
                        skipped.add(split, video_id, path, reason)
                        continue
                    name = template_class(entry["template"])
                    if name not in index:
                        reason = f"entry {position}: class {name!r} is not in labels.json"
                        skipped.add(split, video_id, path, reason)
                        continue
                    label = index[name]
                items.append(VideoItem(video_id, video_dir / f"{video_id}.webm", label))
            splits[split] = items
        return class_names, splits


def _read_json(path: epath.Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON: {error}") from None
