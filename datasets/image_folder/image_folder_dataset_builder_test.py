"""TFDS conformance test of the image_folder builder on dummy_data (one unreadable file)."""

import tensorflow_datasets as tfds

from cover_tf.builders import registry

image_folder_dataset_builder = registry.load_builder_module("image_folder")


class ImageFolderTest(tfds.testing.DatasetBuilderTestCase):
    """3 readable train images (broken.jpg skipped), 1 test image; jpg and RGBA png."""

    DATASET_CLASS = image_folder_dataset_builder.Builder
    SPLITS = {"train": 3, "test": 1}
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
