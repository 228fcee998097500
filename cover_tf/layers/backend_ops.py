"""The few ops the layers need beyond `keras.ops`, per Keras backend.

The layers are written in `keras.ops`, so the same model runs on Keras' TensorFlow backend (the
product: training, export, serving) and on its JAX backend (`benchmarks/gpu_throughput.py`).
What differs:

- `split_leading`: on TensorFlow `tf.split`, whose gradient is one concatenation (slicing's is a
  zero-filled copy of the whole tensor per slice) and which takes dynamic sizes;
- `softmax`: the backend's own (`ops.softmax` warns on an axis of length 1, which temporal
  attention over a 1-frame image has);
- `resize_bilinear` to a size that may be a tensor; `stateless_uniform` and `fold_in` for drop
  path masks that rematerialised blocks replay;
- the token layers' `dense` and `layer_norm`. On TensorFlow a dense layer over `[..., D]` is one
  2-D `MatMul` + `BiasAdd` (Keras' `tensordot` puts a `Reshape` between the two, which keeps
  TensorFlow's CPU runtime from fusing them), exact GELU on that 2-D output, float32 inside for
  half-precision inputs, and the bias gradient as the product `ones [1, M] @ upstream`: float32
  sums, where TensorFlow's `BiasAddGrad` sums bfloat16 in bfloat16. LayerNorm keeps its
  statistics in float32. In bfloat16, GELU and LayerNorm run as small XLA-compiled kernels,
  forward and backward, where one built and run on a tiny input works in this process
  (`_kernel_works`); else, in other dtypes, and within `portable_graph()` (a SavedModel for TF
  Serving, which runs XLA functions on CPU only when asked to), as plain TensorFlow ops.
"""

import contextlib
import functools
import logging
import math

import keras
import numpy as np
from keras import ops

BACKEND = keras.backend.backend()
logger = logging.getLogger(__name__)

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


def _xla_kernel(name, dtype):
    """Whether to run the XLA kernel `name` for `dtype` here: in bfloat16, the one dtype where
    the kernels were measured faster than plain ops (benchmarks/results/kernels_*), where they
    work here."""
    if BACKEND != "tensorflow" or dtype != tf.bfloat16 or not _XLA_KERNELS[-1]:
        return False
    return _kernel_works(name, dtype.name)


@functools.cache
def _kernel_works(name, dtype):
    """Build and run the kernel `name` forward and backward once on a tiny `dtype` input (once per
    process); False, logged, where that raises: the caller then runs plain TensorFlow ops."""
    try:
        with tf.init_scope():  # eagerly, also while a function is being traced
            inputs = tf.cast(tf.reshape(tf.linspace(-3.0, 3.0, 8), (2, 4)), dtype)
            if not np.all(np.isfinite(tf.cast(_PROBES[name](inputs), tf.float32).numpy())):
                raise FloatingPointError("a non-finite value on a tiny input")
    except Exception as error:  # noqa: BLE001  (any failure means: not this kernel here)
        reason = f"{type(error).__name__}: {str(error).strip()[:200]}".splitlines()[0]
        message = "cover_tf: the XLA %s kernel failed in %s here (%s); plain TensorFlow ops run"
        logger.info(message, name, dtype, reason)
        return False
    logger.debug("cover_tf: the XLA %s kernel runs in %s", name, dtype)
    return True


def dense(inputs, kernel, bias=None, gelu=False, training=None):
    """`inputs [..., D] @ kernel [D, E] (+ bias [E])`, then exact GELU where `gelu`: on
    TensorFlow one 2-D MatMul + BiasAdd, GELU on the 2-D product (see the module docstring).
    `training`: whether a gradient may follow (float32 GELU outside training is left as
    `tf.nn.gelu` on the `BiasAdd`, a pattern TensorFlow's CPU runtime fuses into the matmul)."""
    if BACKEND != "tensorflow":
        outputs = ops.matmul(inputs, kernel)
        outputs = outputs if bias is None else outputs + bias
        return keras.activations.gelu(outputs, approximate=False) if gelu else outputs
    units = kernel.shape[-1]
    flat = tf.reshape(inputs, (-1, inputs.shape[-1]))
    plain_gelu = gelu and not training and inputs.dtype == tf.float32
    if bias is None:
        outputs = tf.matmul(flat, kernel)
    elif plain_gelu:  # MatMul -> BiasAdd -> Gelu, with nothing between them
        outputs = tf.nn.bias_add(tf.matmul(flat, kernel), bias)
    else:
        outputs = _affine(flat, kernel, bias)
    if plain_gelu:
        outputs = tf.nn.gelu(outputs, approximate=False)
    elif gelu:
        outputs = _gelu(outputs)
    outputs = tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [units]], axis=0))
    outputs.set_shape(inputs.shape[:-1].concatenate([units]))
    return outputs


def layer_norm(inputs, gamma, beta, epsilon):
    """LayerNorm over the last axis, statistics in float32, output in the input's dtype."""
    if not _xla_kernel("LayerNorm", inputs.dtype):
        return ops.layer_normalization(inputs, gamma, beta, axis=-1, epsilon=epsilon)
    gamma, beta = ops.cast(gamma, "float32"), ops.cast(beta, "float32")
    return _xla_layer_norm(inputs, gamma, beta, epsilon)


if BACKEND == "tensorflow":
    _SQRT_HALF = 0.7071067811865476

    def _gelu(inputs):
        """Exact (erf) GELU, float32 inside (Eigen's bfloat16 `Erfc` is ~9x slower)."""
        if _xla_kernel("GELU", inputs.dtype):
            return _xla_gelu(inputs)
        values = tf.nn.gelu(tf.cast(inputs, tf.float32), approximate=False)
        return tf.cast(values, inputs.dtype)

    @tf.custom_gradient
    def _affine(inputs, kernel, bias):
        """`inputs [M, D] @ kernel + bias` as `MatMul` + `BiasAdd`, whose bias gradient is
        `_column_sums(upstream)`: float32 accumulation in any dtype, where TensorFlow's
        `BiasAddGrad` sums bfloat16 in bfloat16 (an error of ~12 on column sums of 1600 standard
        normal values, up to ~157)."""
        outputs = tf.nn.bias_add(tf.matmul(inputs, kernel), bias)

        def grad(upstream):
            return (
                tf.matmul(upstream, kernel, transpose_b=True),
                tf.matmul(inputs, upstream, transpose_a=True),
                _column_sums(upstream),
            )

        return outputs, grad

    def _column_sums(values):
        """Sums over the rows of `[M, N]` as the product `ones [1, M] @ values` (float32
        accumulation)."""
        ones = tf.ones(tf.stack([1, tf.shape(values)[0]]), values.dtype)
        return tf.reshape(tf.matmul(ones, values), (-1,))

    # The XLA kernels: Python functions, compiled by `tf.function(jit_compile=True)` below.
    def _gelu_forward(inputs):
        values = tf.cast(inputs, tf.float32)
        return tf.cast(0.5 * values * tf.math.erfc(-values * _SQRT_HALF), inputs.dtype)

    def _gelu_backward(inputs, upstream):
        values = tf.cast(inputs, tf.float32)
        cdf = 0.5 * tf.math.erfc(-values * _SQRT_HALF)
        density = tf.exp(-0.5 * values * values) * (_SQRT_HALF / math.sqrt(math.pi))
        return tf.cast(tf.cast(upstream, tf.float32) * (cdf + values * density), inputs.dtype)

    def _layer_norm_forward(inputs, gamma, beta, epsilon):
        """(outputs, mean, 1 / std); float32 statistics."""
        values = tf.cast(inputs, tf.float32)
        mean = tf.reduce_mean(values, axis=-1, keepdims=True)
        variance = tf.reduce_mean(tf.square(values - mean), axis=-1, keepdims=True)
        inv_std = tf.math.rsqrt(variance + epsilon)
        return tf.cast((values - mean) * inv_std * gamma + beta, inputs.dtype), mean, inv_std

    def _layer_norm_backward(inputs, gamma, mean, inv_std, upstream):
        """(d inputs, per-token terms of d gamma and d beta): their sums over tokens run outside,
        as one product each (`_column_sums`; XLA's CPU column reductions are slow)."""
        normed = (tf.cast(inputs, tf.float32) - mean) * inv_std
        upstream = tf.cast(upstream, tf.float32)
        scaled = upstream * gamma
        d_inputs = inv_std * (
            scaled
            - tf.reduce_mean(scaled, axis=-1, keepdims=True)
            - normed * tf.reduce_mean(scaled * normed, axis=-1, keepdims=True)
        )
        return tf.cast(d_inputs, inputs.dtype), upstream * normed, upstream

    def _compiled(function):
        return tf.function(function, jit_compile=True, reduce_retracing=True)

    _gelu_forward_xla, _gelu_backward_xla = map(_compiled, (_gelu_forward, _gelu_backward))
    _layer_norm_forward_xla = _compiled(_layer_norm_forward)
    _layer_norm_backward_xla = _compiled(_layer_norm_backward)

    @tf.custom_gradient
    def _xla_gelu(inputs):
        """Exact GELU, float32 inside, as one XLA kernel forward and one backward."""
        return _gelu_forward_xla(inputs), lambda upstream: _gelu_backward_xla(inputs, upstream)

    def _xla_layer_norm(inputs, gamma, beta, epsilon):
        @tf.custom_gradient
        def normalize(inputs, gamma, beta):
            outputs, mean, inv_std = _layer_norm_forward_xla(inputs, gamma, beta, epsilon)

            def grad(upstream):
                d_inputs, d_gamma, d_beta = _layer_norm_backward_xla(
                    inputs, gamma, mean, inv_std, upstream
                )
                width = d_gamma.shape[-1]
                return (
                    d_inputs,
                    _column_sums(tf.reshape(d_gamma, (-1, width))),
                    _column_sums(tf.reshape(d_beta, (-1, width))),
                )

            return outputs, grad

        return normalize(inputs, gamma, beta)

    @tf.function(jit_compile=True)
    def _probe_gelu(inputs):
        outputs = _gelu_forward(inputs)
        return _gelu_backward(inputs, outputs)

    @tf.function(jit_compile=True)
    def _probe_layer_norm(inputs):
        gamma, beta = tf.ones(inputs.shape[-1:]), tf.zeros(inputs.shape[-1:])
        outputs, mean, inv_std = _layer_norm_forward(inputs, gamma, beta, 1e-6)
        return _layer_norm_backward(inputs, gamma, mean, inv_std, outputs)[0]

    _PROBES = {"GELU": _probe_gelu, "LayerNorm": _probe_layer_norm}
