"""TokenDense and TokenLayerNorm compute what Keras' Dense and LayerNormalization compute.

They are the model's dense and LayerNorm layers with kernels shaped for TensorFlow (a 2-D
MatMul + BiasAdd whose bias gradient is a float32 product; in bfloat16, GELU and LayerNorm as XLA
kernels forward and backward): same weights, same outputs and gradients, in float32 and under
`mixed_bfloat16` and `mixed_float16`, in training and not, with and without `portable_graph`
(the path a SavedModel traces). tests/models/test_kernel_fallbacks.py: the same without the
XLA kernels."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cover_tf.layers import TokenDense, TokenLayerNorm
from cover_tf.layers.backend_ops import portable_graph

TOLERANCE = {"float32": 2e-5, "mixed_bfloat16": 3e-2, "mixed_float16": 5e-3}
POLICIES = ["float32", "mixed_bfloat16", "mixed_float16"]


def _pair(make_ours, make_keras, shape, policy):
    ours, reference = make_ours(dtype=policy), make_keras(dtype=policy)
    ours.build(shape)
    reference.build(shape)
    for mine, theirs in zip(ours.weights, reference.weights, strict=True):
        assert mine.path.split("/")[-1] == theirs.path.split("/")[-1]
        values = np.random.default_rng(len(theirs.path)).normal(size=theirs.shape)
        mine.assign(values)
        theirs.assign(values)
    return ours, reference


def _outputs_and_gradients(layer, inputs, training=None):
    @tf.function
    def run(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=training)
            loss = tf.reduce_sum(tf.cast(outputs, tf.float32) ** 2)
        grads = tape.gradient(loss, [inputs, *layer.trainable_variables])
        return [tf.cast(value, tf.float32) for value in (outputs, *grads)]

    return [value.numpy() for value in run(inputs)]


def _compare(ours, reference, inputs, policy):
    expected = _outputs_and_gradients(reference, inputs)
    for portable in (False, True):
        for training in (False, True):
            if portable:
                with portable_graph():
                    got = _outputs_and_gradients(ours, inputs, training)
            else:
                got = _outputs_and_gradients(ours, inputs, training)
            names = ("outputs", "d_inputs", "d_w0", "d_w1")
            for name, a, b in zip(names, got, expected, strict=True):
                scale = max(1.0, float(np.max(np.abs(b))))
                message = f"{name} (portable={portable}, training={training})"
                np.testing.assert_allclose(a, b, atol=TOLERANCE[policy] * scale, err_msg=message)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("activation", [None, "gelu"])
def test_token_dense_matches_keras_dense(policy, activation):
    shape = (2, 3, 5, 16)
    ours, reference = _pair(
        lambda **kw: TokenDense(24, activation=activation, **kw),
        lambda **kw: keras.layers.Dense(24, activation=activation, **kw),
        shape,
        policy,
    )
    inputs = tf.random.stateless_normal(shape, seed=(1, 2))
    _compare(ours, reference, inputs, policy)
    assert ours(inputs).shape == shape[:-1] + (24,)


@pytest.mark.parametrize("policy", POLICIES)
def test_token_layer_norm_matches_keras_layer_norm(policy):
    shape = (2, 3, 5, 16)
    ours, reference = _pair(
        lambda **kw: TokenLayerNorm(epsilon=1e-6, **kw),
        lambda **kw: keras.layers.LayerNormalization(epsilon=1e-6, **kw),
        shape,
        policy,
    )
    inputs = 3.0 + 2.0 * tf.random.stateless_normal(shape, seed=(3, 4))
    _compare(ours, reference, inputs, policy)


def test_token_layers_round_trip_through_keras_files(tmp_path):
    inputs = keras.Input((4, 8))
    outputs = TokenDense(6, activation="gelu")(TokenLayerNorm()(inputs))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    data = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    np.testing.assert_allclose(loaded(data), model(data), atol=1e-6)
    assert [type(layer).__name__ for layer in loaded.layers[1:]] == ["TokenLayerNorm", "TokenDense"]


def test_dense_is_one_2d_matmul_and_bias_add():
    """Over `[..., D]` tokens the layer is one 2-D `MatMul` straight into `BiasAdd`, in float32
    outside training with the exact GELU straight on it (no `Reshape` or `Cast` between: the ops
    TensorFlow's CPU runtime fuses into one kernel), not Keras' `tensordot`."""
    layer = TokenDense(24, activation="gelu")
    layer.build((None, 5, 16))
    function = tf.function(lambda x: layer(x, training=False))
    graph = function.get_concrete_function(tf.TensorSpec((None, 5, 16))).graph
    (bias_add,) = [op for op in graph.get_operations() if op.type == "BiasAdd"]
    matmul = bias_add.inputs[0].op
    assert matmul.type == "MatMul" and matmul.outputs[0].shape.rank == 2
    consumers = {op.type for op in bias_add.outputs[0].consumers()}
    assert consumers and not consumers & {"Reshape", "Cast"}, consumers  # the GELU's ops
    assert {"Erf", "Erfc"} & {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("training", [False, True])
def test_bias_gradient_sums_in_float32_under_mixed_bfloat16(training):
    """TensorFlow's `BiasAddGrad` sums a bfloat16 gradient in bfloat16 (an error of 11.4 on
    column sums up to ~140 over these 4096 tokens); the layer's bias gradient is the float32
    sum, rounded once."""
    layer = TokenDense(64, dtype="mixed_bfloat16")
    layer.build((None, 16))
    rng = np.random.default_rng(5)
    inputs = tf.constant(rng.normal(size=(4096, 16)), tf.float32)
    upstream = tf.cast(tf.cast(rng.normal(size=(4096, 64)), tf.bfloat16), tf.float32)

    @tf.function
    def bias_gradient():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.cast(layer(inputs, training=training), tf.float32) * upstream)
        return tape.gradient(loss, layer.bias)

    expected = upstream.numpy().astype(np.float64).sum(axis=0)
    error = np.abs(bias_gradient().numpy() - expected)
    assert np.all(error <= 2**-8 * np.abs(expected) + 1e-3), (error.max(), np.abs(expected).max())


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_token_layers_compile_whole_with_xla(policy):
    """Inside a function XLA compiles whole (`jit_compile=True`, as `train.xla_one_frame` and
    `throughput.py --xla on` use), the layers give the same outputs and gradients as outside."""
    norm, dense = TokenLayerNorm(epsilon=1e-6, dtype=policy), TokenDense(24, "gelu", dtype=policy)
    dense.build((None, 5, 16))
    norm.build((None, 5, 16))
    inputs = 1.0 + tf.random.stateless_normal((2, 3, 5, 16), seed=(6, 7))

    def run(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = tf.cast(dense(norm(inputs), training=True), tf.float32)
            loss = tf.reduce_sum(outputs**2)
        return [outputs, *tape.gradient(loss, [inputs, *norm.weights, *dense.weights])]

    compiled = tf.function(run, jit_compile=True)(inputs)
    for got, expected in zip(compiled, tf.function(run)(inputs), strict=True):
        scale = max(1.0, float(np.max(np.abs(expected))))
        atol = TOLERANCE[policy] * scale
        np.testing.assert_allclose(np.asarray(got, np.float32), expected, atol=atol)
