"""TokenDense and TokenLayerNorm compute what Keras' Dense and LayerNormalization compute.

They are the model's dense and LayerNorm layers with kernels shaped for TensorFlow's CPU
runtime (2-D MatMul + BiasAdd for oneDNN's fusion, with the exact GELU fused into it outside
training and as XLA kernels in training; in bfloat16 on AMX CPUs the op pattern grappler fuses
into oneDNN's AMX matmul with a bias post-op; LayerNorm as oneDNN's kernel forward and an XLA kernel with a
hand-written gradient backward): same weights, same outputs and gradients, in float32 and
under `mixed_bfloat16`, in training and not, with and without `portable_graph` (the path a
SavedModel traces); and the fast kernels are the ones that run."""

import contextlib
import pathlib
import sys
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.grappler import tf_optimizer
from tensorflow.python.training import saver

from cover_tf.cpu import amx_bf16, cpu_flags, onednn_enabled, onednn_takes_bfloat16
from cover_tf.layers import TokenDense, TokenLayerNorm
from cover_tf.layers.backend_ops import portable_graph

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))
import profile_ops  # noqa: E402  (reads a TF profiler trace's executed ops)

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


def _optimized_ops(function, spec):
    """[(op type, fused ops)] of `function`'s graph after grappler, as the CPU runtime runs it."""
    concrete = tf.function(function).get_concrete_function(spec)
    meta = saver.export_meta_graph(
        graph_def=concrete.graph.as_graph_def(add_shapes=True), graph=concrete.graph
    )
    meta.collection_def["train_op"].node_list.value.extend(t.name for t in concrete.outputs)
    for node in meta.graph_def.node:
        node.device = "/device:CPU:0"
    graph = tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta)
    return [(node.op, [op.decode() for op in node.attr["fused_ops"].list.s]) for node in graph.node]


def _amx_bfloat16(policy, portable):
    """Whether a dense layer's bias fuses into oneDNN's AMX matmul (`_amx_matmul_bias`)."""
    return policy == "mixed_bfloat16" and not portable and amx_bf16(cpu_flags()[1])


def _skip_unless_onednn_fuses(policy):
    """Skip where grappler's remapper fuses nothing for `policy`: oneDNN off, or bfloat16 on a
    CPU where TensorFlow's oneDNN kernels do not take it (an AVX2-only EPYC)."""
    if not onednn_enabled():
        pytest.skip("TensorFlow's oneDNN kernels are off on this CPU: the remapper fuses nothing")
    if policy == "mixed_bfloat16" and not onednn_takes_bfloat16(cpu_flags()[1]):
        pytest.skip("oneDNN takes no bfloat16 on this CPU: the remapper fuses no bfloat16 op")


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_gelu_fuses_into_the_matmul_outside_training(policy):
    """Outside training, grappler's remapper turns the dense layer and its exact GELU into one
    oneDNN `_FusedMatMul` (the GELU as the kernel's post-op), portable graph or not; in
    training (the GELU's input feeds the gradient) only the bias fuses: into `_FusedMatMul`,
    or in bfloat16 on an AMX CPU into the AMX matmul (`_MklFusedBatchMatMulV2`)."""
    _skip_unless_onednn_fuses(policy)
    layer = TokenDense(24, activation="gelu", dtype=policy)
    layer.build((None, 5, 16))
    spec = tf.TensorSpec((None, 5, 16))

    def training_step(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(tf.cast(layer(inputs, training=True), tf.float32))
        return tape.gradient(loss, [inputs, *layer.trainable_variables])

    for portable in (False, True):
        with portable_graph() if portable else contextlib.nullcontext():
            inference = _optimized_ops(lambda x: layer(x, training=False), spec)
            training = _optimized_ops(training_step, spec)
        assert ("_FusedMatMul", ["BiasAdd", "GeluExact"]) in inference, (portable, inference)
        assert not {"Erf", "Erfc", "MatMul"} & {op for op, _ in inference}, inference
        if not _amx_bfloat16(policy, portable):  # else the next test
            assert ("_FusedMatMul", ["BiasAdd"]) in training, (portable, training)


def _executed_ops(function, inputs):
    """Op types the runtime executes in one call of `function` (a TF profiler trace: after
    grappler and oneDNN's layout pass, with the shapes the call has)."""
    function(inputs)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        function(inputs)
        tf.profiler.experimental.stop()
        return set(profile_ops.op_seconds(logdir))


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_dense_bias_fuses_into_one_kernel(policy):
    """A dense layer without GELU, in training and not, runs as one oneDNN kernel with the
    bias fused: in bfloat16 on an AMX CPU the AMX matmul with the bias as a post-op (TensorFlow's
    `_FusedMatMul` runs bfloat16 without AMX), else `_FusedMatMul`; a SavedModel's graph
    (`portable_graph`) keeps `MatMul` + `BiasAdd`, which every TensorFlow runtime fuses."""
    _skip_unless_onednn_fuses(policy)
    layer = TokenDense(24, dtype=policy)
    layer.build((None, 5, 16))
    inputs = tf.random.stateless_normal((2, 5, 16), seed=(3, 4))

    def training_step(inputs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.cast(layer(inputs, training=True), tf.float32))
        return loss, tape.gradient(loss, layer.trainable_variables)

    for portable in (False, True):
        with portable_graph() if portable else contextlib.nullcontext():
            inference = tf.function(lambda x: layer(x, training=False))
            for function in (inference, tf.function(training_step)):
                ops = _executed_ops(function, inputs)
                if _amx_bfloat16(policy, portable):
                    assert "_MklFusedBatchMatMulV2" in ops, ops
                    assert not {"_MklNativeFusedMatMul", "Mul", "AddV2"} & ops, ops
                else:
                    assert "_MklNativeFusedMatMul" in ops, (portable, ops)
                    assert not {"_MklFusedBatchMatMulV2", "_MklBatchMatMulV2"} & ops, ops


def test_layer_norm_runs_onednn_kernel_except_in_portable_graph():
    """With oneDNN on, LayerNorm's forward pass is oneDNN's `_MklLayerNorm` (gradients above);
    a SavedModel's graph (`portable_graph`) has only standard ops."""
    if not onednn_enabled():
        pytest.skip("TensorFlow's oneDNN kernels are off on this CPU: LayerNorm runs on XLA")
    layer = TokenLayerNorm(epsilon=1e-6)
    layer.build((None, 3, 5, 16))

    def op_types(function):
        concrete = tf.function(function).get_concrete_function(tf.TensorSpec((None, 3, 5, 16)))
        return {op.type for op in concrete.graph.get_operations()}

    assert "_MklLayerNorm" in op_types(layer)
    with portable_graph():
        assert not {op for op in op_types(layer) if op.startswith("_")}


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
    `throughput.py --xla on` use), the layers trace only ops XLA has kernels for (not oneDNN's
    `_MklLayerNorm`), with the same outputs and gradients as outside."""
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
