"""TFDS conformance test of the something_something_v2 builder on dummy_data (VP9 webm)."""

import tensorflow_datasets as tfds

from cover_tf.builders import registry

ssv2_dataset_builder = registry.load_builder_module("something_something_v2")


class SomethingSomethingV2Test(tfds.testing.DatasetBuilderTestCase):
    """3 train, 1 validation and 1 unlabelled test clip, videos in 20bn-something-something-v2/."""

    DATASET_CLASS = ssv2_dataset_builder.Builder
    SPLITS = {"train": 3, "validation": 1, "test": 1}
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
