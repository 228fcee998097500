"""TokenDense and TokenLayerNorm compute what Keras' Dense and LayerNormalization compute.

They are the model's dense and LayerNorm layers with kernels shaped for TensorFlow's CPU
runtime (2-D MatMul + BiasAdd for oneDNN's fusion, GELU in float32, LayerNorm as XLA kernels
with a hand-written gradient): same weights, same outputs and gradients, in float32 and under
`mixed_bfloat16`, with and without `portable_graph` (the path a SavedModel traces)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cover_tf.layers import TokenDense, TokenLayerNorm
from cover_tf.layers.backend_ops import portable_graph

TOLERANCE = {"float32": 2e-5, "mixed_bfloat16": 3e-2}


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


def _outputs_and_gradients(layer, inputs):
    @tf.function
    def run(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs)
            loss = tf.reduce_sum(tf.cast(outputs, tf.float32) ** 2)
        grads = tape.gradient(loss, [inputs, *layer.trainable_variables])
        return [tf.cast(value, tf.float32) for value in (outputs, *grads)]

    return [value.numpy() for value in run(inputs)]


def _compare(ours, reference, inputs, policy):
    expected = _outputs_and_gradients(reference, inputs)
    for portable in (False, True):
        if portable:
            with portable_graph():
                got = _outputs_and_gradients(ours, inputs)
        else:
            got = _outputs_and_gradients(ours, inputs)
        for name, a, b in zip(("outputs", "d_inputs", "d_w0", "d_w1"), got, expected, strict=True):
            scale = max(1.0, float(np.max(np.abs(b))))
            np.testing.assert_allclose(a, b, atol=TOLERANCE[policy] * scale, err_msg=name)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
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


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
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
