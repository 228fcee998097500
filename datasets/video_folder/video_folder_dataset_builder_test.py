"""TFDS conformance test of the video_folder builder on dummy_data (mp4, webm/VP9, avi)."""

import tensorflow_datasets as tfds

from cover_tf.builders import registry

video_folder_dataset_builder = registry.load_builder_module("video_folder")


class VideoFolderTest(tfds.testing.DatasetBuilderTestCase):
    """Builds video_folder from dummy_data: 4 train and 2 test clips of classes cat and dog."""

    DATASET_CLASS = video_folder_dataset_builder.Builder
    SPLITS = {"train": 4, "test": 2}
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
