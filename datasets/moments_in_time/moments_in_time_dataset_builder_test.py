"""TFDS conformance test of the moments_in_time builder on dummy_data."""

import tensorflow_datasets as tfds

from cover_tf.builders import registry

moments_in_time_dataset_builder = registry.load_builder_module("moments_in_time")


class MomentsInTimeTest(tfds.testing.DatasetBuilderTestCase):
    """4 train and 1 validation clip of 3 categories."""

    DATASET_CLASS = moments_in_time_dataset_builder.Builder
    SPLITS = {"train": 4, "validation": 1}
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
