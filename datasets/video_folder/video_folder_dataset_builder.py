"""video_folder: any `root/<split>/<class>/<video>` tree, e.g. a user's own videos."""

import tensorflow_datasets as tfds
from etils import epath

from cover_tf.builders.class_folders import list_class_folders
from cover_tf.builders.video_builder import VideoBuilder, VideoBuilderConfig, VideoItem

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg")


def list_split(split_dir: epath.Path) -> dict[str, list[epath.Path]]:
    """{class folder name: sorted file paths} of one split folder (other files ignored)."""
    return list_class_folders(split_dir, VIDEO_SUFFIXES)


class Builder(VideoBuilder):
    """DatasetBuilder for a folder of videos, one sub-folder per split and per class.

    Every sub-folder of manual_dir is a split (train, validation, test, ...; `train` is required).
    Classes are the sorted folder names of train; another split's class folder must be one of
    them. Keys are "<class>/<file name>". Bad videos are skipped and reported.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        VideoBuilderConfig(name="default", description="Short side 256, source fps."),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Pass the root of your videos as --manual_dir, laid out as
      <root>/train/<class>/<video>   (required; defines the classes)
      <root>/<other split>/<class>/<video>   (optional: validation, test, ...)
    """
    pkg_dir_path = epath.Path(__file__).parent

    def _split_items(self, manual_dir: epath.Path):
        train_dir = manual_dir / "train"
        if not train_dir.is_dir():
            raise FileNotFoundError(
                f"video_folder: expected a train split folder {str(train_dir)!r} "
                f"(layout <root>/<split>/<class>/<video>)"
            )
        class_names = sorted(list_split(train_dir))
        if not class_names:
            raise ValueError(f"video_folder: no class folders in {str(train_dir)!r}")
        label_index = {name: i for i, name in enumerate(class_names)}
        splits = {}
        for split_dir in sorted(p for p in manual_dir.iterdir() if p.is_dir()):
            items = []
            for class_name, paths in list_split(split_dir).items():
                if class_name not in label_index:
                    raise ValueError(
                        f"video_folder: class folder {str(split_dir / class_name)!r} is not "
                        f"one of the train classes {class_names}"
                    )
                items += [
                    VideoItem(f"{class_name}/{p.name}", p, label_index[class_name]) for p in paths
                ]
            splits[split_dir.name] = items
        return class_names, splits
