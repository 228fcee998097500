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
- the token-wise layers' kernels (`dense`, `layer_norm`), shaped for TensorFlow's CPU runtime
  (benchmarks/README.md, "What the profile showed"): a dense layer over `[..., D]` tokens is one
  2-D `MatMul` + `BiasAdd`, which grappler fuses into oneDNN's `_FusedMatMul` (Keras'
  `tensordot` puts a `Reshape` between them), or in bfloat16 on an AMX CPU the op pattern
  grappler fuses into oneDNN's AMX matmul with the bias as a post-op (`_amx_matmul_bias`;
  `_FusedMatMul`'s bfloat16 kernel does not use AMX), and whose bias gradient is a product
  (float32 sums; TensorFlow's `BiasAddGrad` sums bfloat16 in bfloat16). Its exact GELU,
  outside training and where oneDNN takes the dtype, is `tf.nn.gelu` straight on the 2-D `BiasAdd` output
  in the compute dtype (the `_FusedMatMul` path, faster there than the AMX path and a separate
  GELU), the op pattern grappler's remapper fuses into that matmul too (`fused_ops: [BiasAdd,
  GeluExact]`); in training (the pattern's intermediates feed the gradient, so nothing fuses)
  it runs as two small XLA-compiled kernels, forward and backward, in float32 whatever the
  input's float type (Eigen's bfloat16 `Erfc` is ~9x slower than its float32). LayerNorm runs
  forward as oneDNN's own LayerNorm kernel where oneDNN is on (else an XLA-compiled kernel) and
  backward as one XLA-compiled kernel, instead of ~10 element-wise TF ops each way (within a
  function XLA compiles whole, XLA's kernel both ways). `portable_graph()` turns the XLA
  kernels and oneDNN's LayerNorm op off while a SavedModel is traced: TF Serving runs
  XLA-compiled functions on CPU only with `--xla_cpu_compilation_enabled`, and `_MklLayerNorm`
  is an internal op of oneDNN builds (the AMX dense pattern is off there too: where grappler
  does not fuse it, it is three ops).
"""

import contextlib
import functools
import math

import keras
from keras import ops

from cover_tf.cpu import amx_bf16, cpu_flags, onednn_enabled, onednn_takes_bfloat16

BACKEND = keras.backend.backend()

if BACKEND == "tensorflow":
    import tensorflow as tf
    from tensorflow.python.framework import op_def_library  # builds oneDNN's LayerNorm op
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
    """Within: the layers trace standard TensorFlow ops only (no XLA-compiled kernels, no oneDNN
    internal ops), so that a SavedModel traced here runs in any TensorFlow runtime, TF Serving
    included."""
    _XLA_KERNELS.append(False)
    try:
        yield
    finally:
        _XLA_KERNELS.pop()


def _use_xla_kernels():
    return BACKEND == "tensorflow" and _XLA_KERNELS[-1]


def dense(inputs, kernel, bias=None, gelu=False, training=None):
    """`inputs [..., D] @ kernel [D, E] (+ bias [E])`, then exact GELU where `gelu`: on
    TensorFlow one 2-D MatMul + BiasAdd, GELU on the 2-D product (see the module docstring).
    `training`: whether a gradient follows; outside training the GELU is left for grappler to
    fuse into the matmul."""
    if BACKEND != "tensorflow":
        outputs = ops.matmul(inputs, kernel)
        outputs = outputs if bias is None else outputs + bias
        return keras.activations.gelu(outputs, approximate=False) if gelu else outputs
    units = kernel.shape[-1]
    flat = tf.reshape(inputs, (-1, inputs.shape[-1]))
    fuse_gelu = gelu and bias is not None and not training and _onednn_fuses(inputs.dtype)
    if bias is None:
        outputs = tf.matmul(flat, kernel)
    elif fuse_gelu:  # MatMul -> BiasAdd -> GELU as grappler's pattern wants it
        outputs = tf.nn.bias_add(tf.matmul(flat, kernel), bias)
    else:
        outputs = _affine(flat, kernel, bias)
    if gelu:
        outputs = _gelu(outputs, fusable=fuse_gelu)
    outputs = tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [units]], axis=0))
    outputs.set_shape(inputs.shape[:-1].concatenate([units]))
    return outputs


def _xla_compiling():
    """Whether the graph being traced is compiled by XLA as a whole (a function with
    `jit_compile=True`, or inside one), where oneDNN's internal ops have no XLA kernel."""
    from tensorflow.python.ops import control_flow_util  # TF's own test; no public API

    graph = tf.compat.v1.get_default_graph()
    return tf.inside_function() and control_flow_util.GraphOrParentsInXlaContext(graph)


@functools.cache
def _onednn():
    return bool(onednn_enabled())


@functools.cache
def _cpu_flags():
    return cpu_flags()[1]


@functools.cache
def _onednn_fuses(dtype):
    """Whether grappler fuses oneDNN kernels for `dtype` here (bfloat16 needs AVX512F or
    AVX-NE-CONVERT: elsewhere the GELU pattern would run unfused, in Eigen's slow bfloat16)."""
    return _onednn() and (dtype != tf.bfloat16 or onednn_takes_bfloat16(_cpu_flags()))


def _amx_fusion():
    """Whether a bfloat16 dense layer traced here runs as oneDNN's AMX matmul with its bias as
    a post-op (`_amx_matmul_bias`): in a graph grappler optimises (a function, not XLA's),
    outside `portable_graph`, with oneDNN on an AMX CPU (where it was measured)."""
    return (
        tf.inside_function()
        and _use_xla_kernels()
        and _onednn()
        and amx_bf16(_cpu_flags())
        and not _xla_compiling()
    )


_SQRT_HALF = 0.7071067811865476


def _gelu(inputs, fusable):
    """Exact (erf) GELU of a TensorFlow tensor. `fusable`: as the op pattern grappler fuses into
    the `MatMul` + `BiasAdd` that `inputs` comes from, in the input's dtype; else in float32."""
    if fusable:
        return tf.nn.gelu(inputs, approximate=False)
    if _use_xla_kernels():
        return _xla_gelu(inputs)
    if inputs.dtype == tf.float32:
        return tf.nn.gelu(inputs, approximate=False)
    return tf.cast(tf.nn.gelu(tf.cast(inputs, tf.float32), approximate=False), inputs.dtype)


def layer_norm(inputs, gamma, beta, epsilon):
    """LayerNorm over the last axis, statistics in float32, output in the input's dtype."""
    if not _use_xla_kernels():
        return ops.layer_normalization(inputs, gamma, beta, axis=-1, epsilon=epsilon)
    gamma, beta = ops.cast(gamma, "float32"), ops.cast(beta, "float32")
    if not _onednn() or _xla_compiling():
        return _xla_layer_norm(inputs, gamma, beta, epsilon)
    width = inputs.shape[-1]
    outputs = _onednn_layer_norm(tf.reshape(inputs, (-1, width)), gamma, beta, epsilon)
    return tf.reshape(outputs, tf.shape(inputs))


if BACKEND == "tensorflow":

    def _statistics(inputs, epsilon):
        """(float32 values, mean, 1 / std) over the last axis."""
        values = tf.cast(inputs, tf.float32)
        mean = tf.reduce_mean(values, axis=-1, keepdims=True)
        variance = tf.reduce_mean(tf.square(values - mean), axis=-1, keepdims=True)
        return values, mean, tf.math.rsqrt(variance + epsilon)

    def _layer_norm_input_gradient(values, mean, inv_std, gamma, upstream, dtype):
        """(d inputs, per-token terms of d gamma and d beta): the sums over tokens run outside,
        as one product each (`_column_sums`; XLA's CPU column reductions are slow)."""
        normed = (values - mean) * inv_std
        upstream = tf.cast(upstream, tf.float32)
        scaled = upstream * gamma
        d_inputs = inv_std * (
            scaled
            - tf.reduce_mean(scaled, axis=-1, keepdims=True)
            - normed * tf.reduce_mean(scaled * normed, axis=-1, keepdims=True)
        )
        return tf.cast(d_inputs, dtype), upstream * normed, upstream

    @tf.function(jit_compile=True, reduce_retracing=True)
    def _layer_norm_forward(inputs, gamma, beta, epsilon):
        values, mean, inv_std = _statistics(inputs, epsilon)
        return tf.cast((values - mean) * inv_std * gamma + beta, inputs.dtype), mean, inv_std

    @tf.function(jit_compile=True, reduce_retracing=True)
    def _layer_norm_backward(inputs, gamma, mean, inv_std, upstream):
        values = tf.cast(inputs, tf.float32)
        return _layer_norm_input_gradient(values, mean, inv_std, gamma, upstream, inputs.dtype)

    @tf.function(jit_compile=True, reduce_retracing=True)
    def _layer_norm_backward_recomputed(inputs, gamma, upstream, epsilon):
        """`_layer_norm_backward` with the statistics computed again, in the same kernel."""
        values, mean, inv_std = _statistics(inputs, epsilon)
        return _layer_norm_input_gradient(values, mean, inv_std, gamma, upstream, inputs.dtype)

    def _onednn_layer_norm_forward(inputs, gamma, beta, epsilon):
        """oneDNN's LayerNorm kernel over the last axis of `[tokens, D]` (float32 statistics,
        gamma and beta in the input's dtype), ~3x faster than the XLA kernel at the benchmark's
        small config: the op grappler's remapper fuses Keras 2's LayerNorm into, built here
        directly. TensorFlow registers no gradient for it (the caller's `custom_gradient`
        supplies one), so in a graph it is built in place and eagerly it runs as a function of
        inputs the tape does not watch (a function called under a tape would need one)."""
        if not tf.inside_function():
            unwatched = (tf.stop_gradient(value) for value in (inputs, gamma, beta))
            return _onednn_layer_norm_function(*unwatched, epsilon)
        op = op_def_library._apply_op_helper(
            "_MklLayerNorm",
            x=inputs,
            scale=tf.cast(gamma, inputs.dtype),
            offset=tf.cast(beta, inputs.dtype),
            epsilon=epsilon,
            name="onednn_layer_norm",
        )[2]
        return op.outputs[0]

    _onednn_layer_norm_function = tf.function(_onednn_layer_norm_forward, reduce_retracing=True)

    def _column_sums(values):
        """Sums over the rows of `[M, N]` as the product `ones [1, M] @ values`: float32
        accumulation, and faster than TensorFlow's column reductions (`Sum`, `BiasAddGrad`)."""
        ones = tf.ones(tf.stack([1, tf.shape(values)[0]]), values.dtype)
        return tf.reshape(tf.matmul(ones, values), (-1,))

    def _parameter_gradients(d_inputs, d_gamma, d_beta):
        width = d_gamma.shape[-1]
        return (
            d_inputs,
            _column_sums(tf.reshape(d_gamma, (-1, width))),
            _column_sums(tf.reshape(d_beta, (-1, width))),
        )

    def _xla_layer_norm(inputs, gamma, beta, epsilon):
        @tf.custom_gradient
        def normalize(inputs, gamma, beta):
            outputs, mean, inv_std = _layer_norm_forward(inputs, gamma, beta, epsilon)

            def grad(upstream):
                return _parameter_gradients(
                    *_layer_norm_backward(inputs, gamma, mean, inv_std, upstream)
                )

            return outputs, grad

        return normalize(inputs, gamma, beta)

    def _onednn_layer_norm(inputs, gamma, beta, epsilon):
        """oneDNN's forward kernel, which returns no statistics: the backward kernel computes
        them again (cheaper, measured, than the XLA forward kernel that returns them)."""

        @tf.custom_gradient
        def normalize(inputs, gamma, beta):
            outputs = _onednn_layer_norm_forward(inputs, gamma, beta, epsilon)

            def grad(upstream):
                return _parameter_gradients(
                    *_layer_norm_backward_recomputed(inputs, gamma, upstream, epsilon)
                )

            return outputs, grad

        return normalize(inputs, gamma, beta)

    def _matmul_bias(inputs, kernel, bias):
        """`inputs [M, D] @ kernel + bias`, as ops grappler fuses into one oneDNN kernel: in
        bfloat16 on an AMX CPU, oneDNN's matmul with the bias as a post-op (see
        `_amx_matmul_bias`); else `MatMul` + `BiasAdd` (`_FusedMatMul`)."""
        if inputs.dtype == tf.bfloat16 and _amx_fusion():
            return _amx_matmul_bias(inputs, kernel, bias)
        return tf.nn.bias_add(tf.matmul(inputs, kernel), bias)

    def _amx_matmul_bias(inputs, kernel, bias):
        """TensorFlow runs `_FusedMatMul` as oneDNN's inner product, whose bfloat16 kernel does
        not use AMX (`x64:gemm:jit`: 2.2x the time of the AMX matmul of the same product in the
        small benchmark config's training step). The one op pattern grappler fuses into oneDNN's
        matmul primitive with post-ops (`_MklFusedBatchMatMulV2`, AMX brgemm) is a rank-4
        `BatchMatMulV2`, times a scalar, plus a rank-4 addend: the scalar is a
        `PlaceholderWithDefault` of 1.0, which grappler cannot fold away (a constant 1.0 is
        removed, and the pattern with it)."""
        units = kernel.shape[-1]
        product = tf.matmul(tf.reshape(inputs, (1, 1, -1, inputs.shape[-1])), kernel)
        one = tf.raw_ops.PlaceholderWithDefault(input=tf.constant(1.0, inputs.dtype), shape=[])
        outputs = product * one + tf.reshape(bias, (1, 1, 1, units))
        return tf.reshape(outputs, (-1, units))

    @tf.custom_gradient
    def _affine(inputs, kernel, bias):
        """`inputs [M, D] @ kernel + bias` (`_matmul_bias`: ops grappler fuses into one kernel),
        whose bias gradient is `_column_sums(upstream)`: float32 accumulation in any dtype,
        where TensorFlow's `BiasAddGrad` sums bfloat16 in bfloat16 (an error of ~12 on column
        sums of 1600 standard normal values, up to ~157), and 1.3-2x faster than it."""
        outputs = _matmul_bias(inputs, kernel, bias)

        def grad(upstream):
            return (
                tf.matmul(upstream, kernel, transpose_b=True),
                tf.matmul(inputs, upstream, transpose_a=True),
                _column_sums(upstream),
            )

        return outputs, grad

    @tf.function(jit_compile=True, reduce_retracing=True)
    def _gelu_forward(inputs):
        values = tf.cast(inputs, tf.float32)
        return tf.cast(0.5 * values * tf.math.erfc(-values * _SQRT_HALF), inputs.dtype)

    @tf.function(jit_compile=True, reduce_retracing=True)
    def _gelu_backward(inputs, upstream):
        values = tf.cast(inputs, tf.float32)
        cdf = 0.5 * tf.math.erfc(-values * _SQRT_HALF)
        density = tf.exp(-0.5 * values * values) * (_SQRT_HALF / math.sqrt(math.pi))
        return tf.cast(tf.cast(upstream, tf.float32) * (cdf + values * density), inputs.dtype)

    @tf.custom_gradient
    def _xla_gelu(inputs):
        """Exact GELU, float32 inside, as one XLA kernel forward and one backward."""
        return _gelu_forward(inputs), lambda upstream: _gelu_backward(inputs, upstream)
