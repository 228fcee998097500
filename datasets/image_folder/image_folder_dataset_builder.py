"""image_folder: any `root/<split>/<class>/<image>` tree of jpg/png images, e.g. a user's own."""

import dataclasses

import tensorflow_datasets as tfds
from etils import epath

from cover_tf.builders.class_folders import class_folder_items
from cover_tf.builders.examples import SkipLog
from cover_tf.builders.image_examples import ImageExampleEncoder
from cover_tf.builders.manual_builder import ManualDataBuilder

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclasses.dataclass(eq=False)
class ImageFolderConfig(tfds.core.BuilderConfig):
    """How images are stored.

    Args:
      short_side: resize so the shorter side has this many pixels; None keeps the size.
      jpeg_quality: quality of the stored JPEGs (every image is re-encoded as RGB JPEG).
    """

    short_side: int | None = None
    jpeg_quality: int = 90


class Builder(ManualDataBuilder):
    """DatasetBuilder for a folder of images, one sub-folder per split and per class.

    Every sub-folder of manual_dir is a split (`train` required; its non-empty class folders are
    the classes). Images are re-encoded as RGB JPEG. Reported in skipped_<split>.jsonl, never
    silently dropped: unreadable images, files that are not images (by suffix), empty class
    folders (not made classes), class folders train lacks.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [ImageFolderConfig(name="default", description="Original size.")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Pass the root of your images as --manual_dir, laid out as
      <root>/train/<class>/<image>   (required; defines the classes)
      <root>/<other split>/<class>/<image>   (optional)
    """
    pkg_dir_path = epath.Path(__file__).parent

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(),
                "id": tfds.features.Text(),
            }
        )
        return self.dataset_info_from_configs(features=features, supervised_keys=("image", "label"))

    def _split_items(self, manual_dir: epath.Path, skipped: SkipLog):
        return class_folder_items(
            manual_dir, IMAGE_SUFFIXES, skipped=skipped, builder=self.name, kind="image"
        )

    def _example_encoder(self) -> ImageExampleEncoder:
        config = self.builder_config
        return ImageExampleEncoder(short_side=config.short_side, jpeg_quality=config.jpeg_quality)
