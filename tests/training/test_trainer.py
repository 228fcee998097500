"""The trainer seam (`cover_tf.training.trainer`): the Keras 3.15 workarounds live there, not in
the model classes, and `fit` under a strategy trains on every batch of the stream.

The MultiWorkerMirroredStrategy log reduction (tensorflow/tensorflow#72388) needs two workers;
tests/training/test_multi_worker.py runs them (it fails without `train_step_with_batch_axis`).
"""

import ast
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import cover_tf
from cover_tf.config import OptimizerConfig
from cover_tf.models import CoVeRModel, build_cover_model
from cover_tf.training import attach_trainer, compile_model, head_losses, trainer
from cover_tf.training.trainer import ATTACHED

MODELS = pathlib.Path(cover_tf.__file__).parent / "models"
TINY = dict(hidden_size=32, num_layers=1, num_heads=2, patch_size=8, num_frames=2, image_size=16)
HEADS = {"motion": 3, "images": 4}
# Private and public hooks of Keras' trainer; none belongs in an architecture module.
TRAINER_HOOKS = {
    "train_step",
    "test_step",
    "predict_step",
    "compute_loss",
    "compute_metrics",
    "make_train_function",
    "make_test_function",
    "make_predict_function",
    "_maybe_symbolic_build",
    "_symbolic_build",
}


def samples_read(attach, num_batches=3, batch=2):
    """Samples the input pipeline produced during one `fit` epoch of `num_batches` steps over
    exactly that many batches, under a one-device strategy."""
    produced = []

    def samples():  # (frames, {head: one-hot}, {head: mask}), all for head `motion`
        rng = np.random.default_rng(0)
        for index in range(num_batches * batch):
            produced.append(index)
            label = np.eye(3, dtype="float32")[index % 3]
            yield (
                rng.normal(size=(2, 16, 16, 3)).astype("float32"),
                {"motion": label, "images": np.zeros(4, "float32")},
                {"motion": np.float32(1), "images": np.float32(0)},
            )

    spec = (
        tf.TensorSpec((2, 16, 16, 3)),
        {"motion": tf.TensorSpec((3,)), "images": tf.TensorSpec((4,))},
        {"motion": tf.TensorSpec(()), "images": tf.TensorSpec(())},
    )
    dataset = tf.data.Dataset.from_generator(samples, output_signature=spec).batch(batch)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = build_cover_model(HEADS, **TINY)
        if attach:
            attach_trainer(model)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=head_losses(model.head_names))
    model.fit(dataset, epochs=1, steps_per_epoch=num_batches, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == num_batches
    return len(produced)


def test_fit_under_a_strategy_reads_the_stream_once():
    # Every sample of the stream is produced once and trained on: the metrics are built from
    # the dataset's element spec, not from a batch of the stream.
    assert samples_read(attach=True) == 3 * 2


def test_stock_keras_still_reads_a_batch_to_build_under_a_strategy():
    # Keras 3.15 builds the metrics from a batch pulled off the training stream and
    # `strategy.reduce`d (keras-team/keras#20394, where the batch used to be lost; #20585 for
    # MultiWorkerMirroredStrategy, whose reduce of that batch fails), then restarts the stream.
    # When this fails, Keras is fixed: drop `build_from_element_spec` from training/trainer.py.
    assert samples_read(attach=False) > 3 * 2


def test_attached_model_saves_and_loads_as_the_architecture_class(tmp_path):
    model = attach_trainer(build_cover_model(HEADS, **TINY))
    assert attach_trainer(model) is model and getattr(model, ATTACHED)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert type(loaded) is CoVeRModel
    assert not getattr(loaded, ATTACHED, False)
    frames = np.random.default_rng(1).normal(size=(2, 2, 16, 16, 3)).astype("float32")
    for name, logits in model(frames).items():
        np.testing.assert_allclose(loaded(frames)[name], logits, atol=1e-6)


def test_no_model_module_defines_a_trainer_hook():
    defined = {}
    for path in sorted(MODELS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name in TRAINER_HOOKS:
                defined.setdefault(str(path.relative_to(MODELS)), []).append(node.name)
    assert not defined, f"Keras trainer hooks in cover_tf/models/: {defined}"


def mixed_stream(num_frames_per_batch, batch_size=None):
    """Batches of 1-frame images (head `images`) and 2-frame clips (head `motion`), in this
    order, with T unknown in the element spec as in the mixed training stream; B unknown too
    (4 images, 2 clips) unless every batch has `batch_size` examples."""
    rng = np.random.default_rng(2)
    batches = []
    for frames in num_frames_per_batch:
        size = batch_size or (4 if frames == 1 else 2)
        head, other = ("images", "motion") if frames == 1 else ("motion", "images")
        labels = np.eye(HEADS[head], dtype="float32")[rng.integers(HEADS[head], size=size)]
        batches.append(
            (
                rng.normal(size=(size, frames, 16, 16, 3)).astype("float32"),
                {head: labels, other: np.zeros((size, HEADS[other]), "float32")},
                {head: np.ones(size, "float32"), other: np.zeros(size, "float32")},
            )
        )
    spec = (
        tf.TensorSpec((batch_size, None, 16, 16, 3)),
        {name: tf.TensorSpec((None, classes)) for name, classes in HEADS.items()},
        {name: tf.TensorSpec((None,)) for name in HEADS},
    )
    dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=spec)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))


MATMULS = ("MatMul", "BatchMatMulV2", "BatchMatMulV3")


def ops_per_branch(model, spec, op_types):
    """{"then": n, "else": n}: ops of `op_types`, on TF's kernels, in the two branches of the
    training step's `cond` (an XLA-compiled call holds its own)."""
    step = tf.function(model.train_step).get_concrete_function(spec)
    library = {f.signature.name: f for f in step.graph.as_graph_def().library.function}
    (cond,) = [op for op in step.graph.get_operations() if op.type in ("If", "StatelessIf")]
    return {
        branch: sum(
            node.op in op_types for node in library[cond.get_attr(f"{branch}_branch").name].node_def
        )
        for branch in ("then", "else")
    }


@pytest.mark.parametrize("batch_size", [None, 2], ids=["batch_unknown", "batch_static"])
def test_a_mixed_stream_trains_its_images_on_the_one_frame_trace(batch_size):
    """Keras traces one step for a stream of clips and images; the trainer runs the images on a
    trace with T == 1 (the temporal branch as a matrix product: no temporal softmax), the clips
    on the clip graph, and the weights follow stock Keras' step; also when every group has the
    same batch size (B static in the element spec)."""
    stream = mixed_stream([1, 2, 1, 2, 1], batch_size)
    weights = {}
    for attach in (True, False):
        keras.utils.set_random_seed(0)
        model = build_cover_model(HEADS, temporal_init="normal", drop_path_rate=0.2, **TINY)
        if attach:
            attach_trainer(model)
        model.compile(optimizer=keras.optimizers.AdamW(1e-2), loss=head_losses(model.head_names))
        model.fit(stream, epochs=1, steps_per_epoch=5, verbose=0)
        assert int(model.optimizer.iterations.numpy()) == 5
        weights[attach] = model.get_weights()
        if attach:  # one block: the clip branch has a temporal and a spatial softmax
            assert ops_per_branch(model, stream.element_spec, ("Softmax",)) == {
                "then": 1,
                "else": 2,
            }
    for dispatched, stock in zip(weights[True], weights[False], strict=True):
        np.testing.assert_allclose(dispatched, stock, rtol=1e-4, atol=1e-5)
    # Without the one-frame shortcut (dropout in training), Keras' own step runs: no cond.
    model = attach_trainer(build_cover_model(HEADS, dropout_rate=0.1, **TINY))
    assert not model.backbone.specialises_one_frame(training=True)


def test_xla_one_frame_pass_compiles_the_image_batches_only():
    """`train.xla_one_frame`: the one-frame branch of the step leaves no matrix product on
    TF's kernels (they are inside the XLA-compiled call), the clip branch keeps them, and the
    weights after a mixed stream follow the TF-kernel step."""
    stream = mixed_stream([1, 2, 1, 2, 1])
    weights = {}
    for xla in (True, False):
        keras.utils.set_random_seed(0)
        model = attach_trainer(
            build_cover_model(HEADS, temporal_init="normal", drop_path_rate=0.2, **TINY)
        )
        if xla:
            trainer.xla_one_frame_pass(model)
        model.compile(optimizer=keras.optimizers.AdamW(1e-2), loss=head_losses(model.head_names))
        model.fit(stream, epochs=1, steps_per_epoch=5, verbose=0)
        weights[xla] = model.get_weights()
        matmuls = ops_per_branch(model, stream.element_spec, MATMULS)
        assert (matmuls["then"] == 0) == xla and matmuls["else"] > 0
    for compiled_weights, stock in zip(weights[True], weights[False], strict=True):
        np.testing.assert_allclose(compiled_weights, stock, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    "jit_compile, xla_one_frame, compiled", [(False, True, True), (True, True, False)]
)
def test_compile_model_adds_the_one_frame_pass_unless_the_whole_step_is_compiled(
    jit_compile, xla_one_frame, compiled
):
    model = build_cover_model(HEADS, temporal_init="normal", **TINY)
    compile_model(model, OptimizerConfig(), 10, jit_compile, xla_one_frame)
    matmuls = ops_per_branch(model, mixed_stream([1, 2]).element_spec, MATMULS)
    assert (matmuls["then"] == 0) == compiled
