"""video_folder: any `root/<split>/<class>/<video>` tree, e.g. a user's own videos."""

import tensorflow_datasets as tfds
from etils import epath

from cover_tf.builders.class_folders import class_folder_items
from cover_tf.builders.examples import SkipLog
from cover_tf.builders.video_builder import VideoBuilder, VideoBuilderConfig

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg")


class Builder(VideoBuilder):
    """DatasetBuilder for a folder of videos, one sub-folder per split and per class.

    Every sub-folder of manual_dir is a split (train, validation, test, ...; `train` is required).
    Classes are the sorted non-empty class folders of train. Keys are "<class>/<file name>".
    Reported in skipped_<split>.jsonl, never silently dropped: bad videos, files that are not
    videos (by suffix), empty class folders (not made classes), class folders train lacks.
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

    def _split_items(self, manual_dir: epath.Path, skipped: SkipLog):
        return class_folder_items(
            manual_dir, VIDEO_SUFFIXES, skipped=skipped, builder=self.name, kind="video"
        )
