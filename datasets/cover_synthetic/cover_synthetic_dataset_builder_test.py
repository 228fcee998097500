"""TFDS conformance tests of cover_synthetic, one per task, at reduced sizes (same rendering)."""

import tensorflow_datasets as tfds

from cover_tf.builders import registry

cover_synthetic_dataset_builder = registry.load_builder_module("cover_synthetic")
SyntheticConfig = cover_synthetic_dataset_builder.SyntheticConfig


class AppearanceTest(tfds.testing.DatasetBuilderTestCase):
    """12 appearance classes x (2 train, 1 test) clips of 16 x 40 x 40."""

    DATASET_CLASS = cover_synthetic_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = [
        SyntheticConfig(
            name="appearance_small", task="appearance", train_per_class=2, test_per_class=1
        )
    ]
    SPLITS = {"train": 24, "test": 12}
    SKIP_CHECKSUMS = True


class MotionTest(AppearanceTest):
    """8 motion classes x (2 train, 1 test) clips."""

    BUILDER_CONFIG_NAMES_TO_TEST = [
        SyntheticConfig(name="motion_small", task="motion", train_per_class=2, test_per_class=1)
    ]
    SPLITS = {"train": 16, "test": 8}


class ImagesTest(AppearanceTest):
    """24 image classes x (2 train, 1 test) images of 40 x 40."""

    BUILDER_CONFIG_NAMES_TO_TEST = [
        SyntheticConfig(name="images_small", task="images", train_per_class=2, test_per_class=1)
    ]
    SPLITS = {"train": 48, "test": 24}


if __name__ == "__main__":
    tfds.testing.test_main()
