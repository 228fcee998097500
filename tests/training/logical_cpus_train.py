"""`python -m cover_tf.train` with the CPU split into 2 logical devices (for MirroredStrategy tests).

Logical devices must be configured before TensorFlow initialises, hence this wrapper script.
"""

import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from cover_tf.train import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
