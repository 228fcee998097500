"""Stochastic depth."""

import keras
from keras import ops

from cover_tf.layers.backend_ops import stateless_uniform


@keras.saving.register_keras_serializable(package="cover_tf")
class DropPath(keras.layers.Layer):
    """Drops a whole residual branch per sample (stochastic depth, Huang et al. 2016).

    In training, each sample's branch output is zeroed with probability `rate` and the kept ones
    are scaled by `1 / (1 - rate)`; at inference it is the identity.

    Args:
        rate: float in [0, 1), probability of dropping the branch for a sample. Default 0.
        seed: int or None, seed of the Keras `SeedGenerator`.

    Input and output: a tensor `[B, ...]` whose first axis is the sample axis. `call`'s `seed`
    (an int tensor `[2]`) draws the mask statelessly instead: the same seed gives the same mask,
    which rematerialised blocks rely on when they recompute the forward pass.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"DropPath rate must be in [0, 1), got rate={rate!r}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if rate > 0.0 else None

    def call(self, inputs, training=None, seed=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        if seed is None:
            noise = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator)
        else:
            noise = stateless_uniform(shape, seed, inputs.dtype)
        mask = ops.floor(noise + ops.cast(keep, inputs.dtype))
        return inputs / ops.cast(keep, inputs.dtype) * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
