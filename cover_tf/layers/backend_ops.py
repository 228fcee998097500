"""The few ops the layers need beyond `keras.ops`, per Keras backend.

The layers are written in `keras.ops`, so the same model runs on Keras' TensorFlow backend (the
product: training, export, serving) and on its JAX backend (how `benchmarks/gpu_throughput.py`
measures the model on a GPU machine where TensorFlow cannot be installed). These differ:

- splitting off the CLS token: on TensorFlow `tf.split`, whose gradient is one concatenation and
  which takes dynamic sizes (`ops.split` needs the split axis' static length, and slicing's
  gradient is a zero-filled `StridedSliceGrad` of the whole tensor per slice: ~20% of the tiny
  benchmark config's training step);
- softmax: the backend's own, as `ops.softmax` warns on every trace where the axis has length 1,
  which temporal attention over a 1-frame image legitimately has;
- bilinear resizing to a size that may be a dynamic tensor (TensorFlow graphs) or a static int;
- stateless uniform noise from an explicit seed and deriving one seed from another (`fold_in`),
  which rematerialised blocks use to replay their drop path masks;
- the token-wise layers' kernels (`dense`, `gelu`, `layer_norm`), shaped for TensorFlow's CPU
  runtime (benchmarks/README.md, "What the profile showed"): a dense layer over `[..., D]` tokens
  is one 2-D `MatMul` + `BiasAdd`, which grappler fuses into oneDNN's `_FusedMatMul` (Keras'
  `tensordot` puts a `Reshape` between them); GELU's `Erfc` runs in float32 (Eigen's bfloat16
  `Erfc` is ~9x slower than its float32); LayerNorm runs as two small XLA-compiled kernels, one
  forward and one backward pass over the tokens, instead of ~10 element-wise TF ops each way.
  `portable_graph()` turns the XLA kernels off while a SavedModel is traced: TF Serving runs
  XLA-compiled functions on CPU only with `--xla_cpu_compilation_enabled`.
"""

import contextlib

import keras
from keras import ops

BACKEND = keras.backend.backend()

if BACKEND == "tensorflow":
    import tensorflow as tf
elif BACKEND == "jax":
    import jax


def split_leading(tokens, num_leading, axis):
    """`(tokens[..., :num_leading, ...], tokens[..., num_leading:, ...])` along `axis`."""
    if BACKEND == "tensorflow":
        return tf.split(tokens, [num_leading, -1], axis=axis)
    return ops.split(tokens, [num_leading], axis=axis)


def softmax(scores):
    """Softmax over the last axis."""
    if BACKEND == "tensorflow":
        return tf.nn.softmax(scores, axis=-1)
    if BACKEND == "jax":
        return jax.nn.softmax(scores, axis=-1)
    return ops.softmax(scores, axis=-1)


def resize_bilinear(images, height, width):
    """Bilinear resize of `[B, h, w, C]` to `height` x `width` (ints or scalar tensors), half-pixel
    centres, no antialiasing."""
    if BACKEND == "tensorflow":
        return tf.image.resize(images, tf.stack([height, width]), method="bilinear")
    return ops.image.resize(images, (height, width), interpolation="bilinear", antialias=False)


def stateless_uniform(shape, seed, dtype):
    """Uniform [0, 1) noise of `shape` drawn from the int seed tensor `seed` `[2]`: the same seed
    gives the same noise."""
    if BACKEND == "tensorflow":
        return tf.random.stateless_uniform(shape, seed=seed, dtype=dtype)
    if BACKEND == "jax":
        return keras.random.uniform(shape, dtype=dtype, seed=seed)
    raise NotImplementedError(f"stateless drop path masks are not implemented on {BACKEND!r}")


def fold_in(seed, index):
    """A seed `[2]` derived from `seed` and the int `index`, independent of the others."""
    if BACKEND == "tensorflow":
        return tf.random.experimental.stateless_fold_in(seed, index)
    if BACKEND == "jax":
        return jax.random.fold_in(seed, index)
    raise NotImplementedError(f"stateless drop path masks are not implemented on {BACKEND!r}")


_XLA_KERNELS = [True]


@contextlib.contextmanager
def portable_graph():
    """Within: the layers trace standard TensorFlow ops only (no XLA-compiled kernels), so that a
    SavedModel traced here runs in any TensorFlow runtime, TF Serving included."""
    _XLA_KERNELS.append(False)
    try:
        yield
    finally:
        _XLA_KERNELS.pop()


def _use_xla_kernels():
    return BACKEND == "tensorflow" and _XLA_KERNELS[-1]


def dense(inputs, kernel, bias=None):
    """`inputs [..., D] @ kernel [D, E] (+ bias [E])`: on TensorFlow one 2-D MatMul + BiasAdd."""
    if BACKEND != "tensorflow":
        outputs = ops.matmul(inputs, kernel)
        return outputs if bias is None else outputs + bias
    units = kernel.shape[-1]
    outputs = tf.matmul(tf.reshape(inputs, (-1, inputs.shape[-1])), kernel)
    if bias is not None:
        outputs = tf.nn.bias_add(outputs, bias)
    outputs = tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [units]], axis=0))
    outputs.set_shape(inputs.shape[:-1].concatenate([units]))
    return outputs


def gelu(inputs):
    """Exact (erf) GELU; on TensorFlow in float32 whatever the input's float type."""
    if BACKEND != "tensorflow" or inputs.dtype == tf.float32:
        return keras.activations.gelu(inputs, approximate=False)
    return tf.cast(tf.nn.gelu(tf.cast(inputs, tf.float32), approximate=False), inputs.dtype)


def layer_norm(inputs, gamma, beta, epsilon):
    """LayerNorm over the last axis, statistics in float32, output in the input's dtype."""
    if not _use_xla_kernels():
        return ops.layer_normalization(inputs, gamma, beta, axis=-1, epsilon=epsilon)
    return _xla_layer_norm(inputs, ops.cast(gamma, "float32"), ops.cast(beta, "float32"), epsilon)


if BACKEND == "tensorflow":

    @tf.function(jit_compile=True, reduce_retracing=True)
    def _layer_norm_forward(inputs, gamma, beta, epsilon):
        values = tf.cast(inputs, tf.float32)
        mean = tf.reduce_mean(values, axis=-1, keepdims=True)
        centred = values - mean
        inv_std = tf.math.rsqrt(
            tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True) + epsilon
        )
        return tf.cast(centred * inv_std * gamma + beta, inputs.dtype), mean, inv_std

    @tf.function(jit_compile=True, reduce_retracing=True)
    def _layer_norm_backward(inputs, gamma, mean, inv_std, upstream):
        """(d inputs, per-token terms of d gamma and d beta): the sums over tokens run outside,
        as TensorFlow's column reductions (XLA's CPU column reductions are slow)."""
        normed = (tf.cast(inputs, tf.float32) - mean) * inv_std
        upstream = tf.cast(upstream, tf.float32)
        scaled = upstream * gamma
        d_inputs = inv_std * (
            scaled
            - tf.reduce_mean(scaled, axis=-1, keepdims=True)
            - normed * tf.reduce_mean(scaled * normed, axis=-1, keepdims=True)
        )
        return tf.cast(d_inputs, inputs.dtype), upstream * normed, upstream

    def _xla_layer_norm(inputs, gamma, beta, epsilon):
        @tf.custom_gradient
        def normalize(inputs, gamma, beta):
            outputs, mean, inv_std = _layer_norm_forward(inputs, gamma, beta, epsilon)

            def grad(upstream):
                d_inputs, d_gamma, d_beta = _layer_norm_backward(
                    inputs, gamma, mean, inv_std, upstream
                )
                width = gamma.shape[-1]
                return (
                    d_inputs,
                    tf.reduce_sum(tf.reshape(d_gamma, (-1, width)), axis=0),
                    tf.reduce_sum(tf.reshape(d_beta, (-1, width)), axis=0),
                )

            return outputs, grad

        return normalize(inputs, gamma, beta)
