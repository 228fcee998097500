"""Dense and LayerNorm over token tensors `[..., D]`, computed by `backend_ops`' kernels.

Drop-in subclasses of Keras' `Dense` and `LayerNormalization`: the same weights, weight names,
arguments and config, so `.keras` files, weight files and the checkpoint converters see the
layers they know; only `call` differs (see `backend_ops` for why each kernel has its shape). A
layer configured beyond what the kernels cover (LoRA, quantisation, RMS scaling, another axis)
runs Keras' own `call`.
"""

import keras
from keras import ops

from cover_tf.layers.backend_ops import dense, layer_norm


@keras.saving.register_keras_serializable(package="cover_tf")
class TokenDense(keras.layers.Dense):
    """`keras.layers.Dense` over the last axis of `[..., D]`, exact GELU run by `backend_ops.dense`."""

    @property
    def runs_own_kernel(self):
        """Whether `call` runs `backend_ops.dense` on `kernel` (not Keras' LoRA or quantised
        `call`): the layer is then exactly `inputs @ kernel + bias` and its activation."""
        return not self.lora_enabled and self.quantization_mode is None

    def call(self, inputs, training=None):
        if not self.runs_own_kernel:
            return super().call(inputs, training=training)
        kernel = ops.cast(self.kernel, self.compute_dtype)
        bias = None if self.bias is None else ops.cast(self.bias, self.compute_dtype)
        if self.activation is keras.activations.gelu:
            return dense(inputs, kernel, bias, gelu=True, training=training)
        return self.activation(dense(inputs, kernel, bias))  # Keras keeps `linear` for none


@keras.saving.register_keras_serializable(package="cover_tf")
class TokenLayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` over the last axis (centre and scale), statistics in
    float32, run by `backend_ops.layer_norm`."""

    def call(self, inputs):
        last_axis = list(self.axis) in ([-1], [len(inputs.shape) - 1])
        if not last_axis or self.rms_scaling or not (self.center and self.scale):
            return super().call(inputs)
        outputs = layer_norm(inputs, self.gamma, self.beta, self.epsilon)
        return ops.cast(outputs, self.compute_dtype)
