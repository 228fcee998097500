"""Every special kernel falls back to plain TensorFlow ops where it fails on this machine.

`backend_ops` runs GELU and LayerNorm in bfloat16 as XLA kernels only where one built and run on a
tiny input works (once per process); here every such probe is made to fail: each failure is one
INFO line on the `cover_tf` logger, the layers trace no XLA function and compute what Keras'
layers compute, and a whole model trains a step in each precision."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from cover_tf.layers import TokenDense, TokenLayerNorm, backend_ops
from tests.models.test_timesformer import clip, tiny_model

POLICIES = ["float32", "mixed_bfloat16", "mixed_float16"]
TOLERANCE = {"float32": 2e-5, "mixed_bfloat16": 3e-2, "mixed_float16": 5e-3}


@pytest.fixture
def failing_kernels(monkeypatch, caplog):
    """Every probe raises, as a kernel XLA cannot build or run here would; the cache of probe
    results is emptied before and after."""

    def fail(inputs):
        raise tf.errors.InvalidArgumentError(None, None, "no kernel for this dtype (forced)")

    for name in backend_ops._PROBES:
        monkeypatch.setitem(backend_ops._PROBES, name, fail)
    backend_ops._kernel_works.cache_clear()
    caplog.set_level(logging.INFO, logger="cover_tf")
    yield caplog
    backend_ops._kernel_works.cache_clear()


def _layers(policy):
    norm = TokenLayerNorm(epsilon=1e-6, dtype=policy)
    dense = TokenDense(24, activation="gelu", dtype=policy)
    norm.build((None, 16))
    dense.build((None, 16))
    for weight in norm.weights + dense.weights:
        weight.assign(np.random.default_rng(len(weight.path)).normal(size=weight.shape))
    return norm, dense


def _run(norm, dense, inputs, training):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = tf.cast(dense(norm(inputs), training=training), tf.float32)
        loss = tf.reduce_sum(outputs**2)
    grads = tape.gradient(loss, [inputs, *norm.weights, *dense.weights])
    return [tf.cast(value, tf.float32) for value in (outputs, *grads)]


def _xla_functions(function, inputs):
    graph = function.get_concrete_function(inputs).graph.as_graph_def()
    return [f.signature.name for f in graph.library.function if f.attr["_XlaMustCompile"].b]


@pytest.mark.parametrize("policy", POLICIES)
def test_failed_probes_run_plain_ops_with_the_same_results(policy, failing_kernels):
    norm, dense = _layers(policy)
    inputs = tf.cast(2.0 + tf.random.stateless_normal((2, 5, 16), seed=(1, 2)), norm.compute_dtype)
    keras_norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy)
    keras_dense = keras.layers.Dense(24, activation="gelu", dtype=policy)
    keras_norm.build((None, 16))
    keras_dense.build((None, 16))
    theirs = keras_norm.weights + keras_dense.weights
    for weight, value in zip(theirs, norm.weights + dense.weights, strict=True):
        weight.assign(value)
    for training in (False, True):
        function = tf.function(lambda x, training=training: _run(norm, dense, x, training))
        assert _xla_functions(function, inputs) == []
        expected = tf.function(lambda x, t=training: _run(keras_norm, keras_dense, x, t))(inputs)
        for got, want in zip(function(inputs), expected, strict=True):
            scale = max(1.0, float(np.max(np.abs(want))))
            np.testing.assert_allclose(got, want, atol=TOLERANCE[policy] * scale)
    lines = [r.getMessage() for r in failing_kernels.records if r.name.startswith("cover_tf")]
    if policy != "mixed_bfloat16":  # plain ops by choice: nothing probed, nothing to say
        assert lines == []
        return
    for kernel in ("LayerNorm", "GELU"):  # once per process and dtype, not per trace
        said = [line for line in lines if f"XLA {kernel} kernel failed in bfloat16" in line]
        assert len(said) == 1, lines
        assert "plain TensorFlow ops run" in said[0] and "(forced)" in said[0]


def test_probes_pass_here_and_the_kernels_run_in_bfloat16_only():
    """Without forced failures the XLA kernels run here in bfloat16 (so the test above tests a
    fallback), and in no other dtype."""
    backend_ops._kernel_works.cache_clear()
    for policy in POLICIES:
        norm, dense = _layers(policy)
        inputs = tf.cast(tf.ones((2, 16)), norm.compute_dtype)  # LayerNorm takes it as it comes
        function = tf.function(lambda x, norm=norm, dense=dense: _run(norm, dense, x, True))
        kernels = _xla_functions(function, inputs)
        assert len(kernels) >= 4 if policy == "mixed_bfloat16" else kernels == [], kernels
    assert backend_ops._kernel_works.cache_info().currsize == 2  # LayerNorm and GELU


@pytest.mark.parametrize("policy", POLICIES)
def test_model_trains_a_step_on_plain_ops(policy, failing_kernels):
    """A whole model, forward and backward, eagerly and traced, with every kernel fallen back
    (`mixed_float16` included: the precision whose oneDNN LayerNorm aborted on a Zen 4 EPYC)."""
    model = tiny_model(dtype=policy)
    frames = tf.constant(clip())

    def step(frames):
        with tf.GradientTape() as tape:
            loss = sum(tf.reduce_sum(value) for value in model(frames, training=True).values())
        return loss, tape.gradient(loss, model.trainable_variables)

    for function in (step, tf.function(step)):
        loss, grads = function(frames)
        assert np.isfinite(float(loss))
        assert all(np.all(np.isfinite(tf.cast(g, tf.float32))) for g in grads if g is not None)
