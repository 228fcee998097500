"""TFDS conformance test of the kinetics builder on dummy_data (the public mirror layout)."""

import tensorflow_datasets as tfds

from cover_tf.builders import registry

kinetics_dataset_builder = registry.load_builder_module("kinetics")


class KineticsTest(tfds.testing.DatasetBuilderTestCase):
    """Builds kinetics/400 from dummy_data: 5 of 6 train rows (one video missing), 2 val, 2 test."""

    DATASET_CLASS = kinetics_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["400"]
    SPLITS = {"train": 5, "validation": 2, "test": 2}
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
