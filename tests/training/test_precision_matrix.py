"""Every dtype policy the configs offer, end to end, on this CPU.

float32, mixed_bfloat16 and mixed_float16 (`train.precision`'s values) each run a tiny model with
the demo's patch embedding (difference tubelets, non-zero temporal branch) through:
  forward          eagerly, in a tf.function and XLA-compiled (`jit_compile`), clips and images;
  a training step  under the project's trainer (`compile_model` + `fit` on a stream mixing clips
                   and one-frame images, T unknown in its spec): eagerly, as a tf.function, the
                   whole step through XLA (`train.jit_compile`) and the one-frame pass through XLA
                   (`train.xla_one_frame`, the demo's default);
  .keras           save and load, optimizer state (mixed_float16's LossScaleOptimizer) included;
  export           with its self-check, whose tolerance follows the compute dtype;
  serving          the SavedModel loaded where cover_tf cannot be imported, every signature.
The policies are applied as given (`build_cover_model(dtype=...)`): the training loop's
bfloat16 fallback on CPUs without native bfloat16 (`training/precision.py`) does not apply here.
The same path through the CLI (train the demo config, export, serve) is the slow test at the end.
"""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from cover_tf.config import OptimizerConfig
from cover_tf.models import build_cover_model
from cover_tf.serving.exporter import METADATA_FILE, SelfCheckTolerance, export_model
from cover_tf.serving.heads import head_specs
from cover_tf.training import compile_model
from tests.serving.conftest import LIMITS
from tests.serving.test_precision_export import check_served, serve_without_cover_tf
from tests.training.test_trainer import MATMULS, ops_per_branch

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
COMPUTE_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
TRAIN_MODES = ("eager", "tf_function", "jit_compile", "xla_one_frame")
HEADS = {"clips": 3, "images": 4}
# The demo's embedding (tubelets of 2, sinusoidal temporal init) at the tests' tiny size; with
# T = 1 the time embedding is resized (2 -> 1 steps), the path that broke XLA's bfloat16 gradient.
TINY = dict(
    hidden_size=32,
    num_layers=1,
    num_heads=2,
    patch_size=8,
    num_frames=2,
    image_size=16,
    tubelet_size=2,
    temporal_init="sinusoidal",
)
STEPS = 3


def tiny_model(policy):
    keras.utils.set_random_seed(0)
    return build_cover_model(HEADS, dtype=None if policy == "float32" else policy, **TINY)


def mixed_stream():
    """An image batch (T = 1), a clip batch (T = 2), an image batch; T unknown in the spec, as in
    the demo's mixed stream, so the trainer's one-frame branch takes the images."""
    rng = np.random.default_rng(0)
    batches = []
    for frames, head, other in ((1, "images", "clips"), (2, "clips", "images")) * 2:
        size = 4 if frames == 1 else 2
        labels = np.eye(HEADS[head], dtype="float32")[rng.integers(HEADS[head], size=size)]
        batches.append(
            (
                rng.normal(size=(size, frames, 16, 16, 3)).astype("float32"),
                {head: labels, other: np.zeros((size, HEADS[other]), "float32")},
                {head: np.ones(size, "float32"), other: np.zeros(size, "float32")},
            )
        )
    spec = (
        tf.TensorSpec((None, None, 16, 16, 3)),
        {name: tf.TensorSpec((None, classes)) for name, classes in HEADS.items()},
        {name: tf.TensorSpec((None,)) for name in HEADS},
    )
    dataset = tf.data.Dataset.from_generator(lambda: iter(batches[:STEPS]), output_signature=spec)
    return dataset.apply(tf.data.experimental.assert_cardinality(STEPS))


def train(policy, mode):
    """A fresh tiny model trained STEPS steps of the mixed stream in `mode`: (model, losses)."""
    model = tiny_model(policy)
    compile_model(
        model,
        OptimizerConfig(learning_rate=1e-2, warmup_steps=0),
        total_steps=10,
        jit_compile=mode == "jit_compile",
        xla_one_frame=mode == "xla_one_frame",
    )
    if mode == "eager":
        model.run_eagerly = True
    before = [weight.numpy() for weight in model.trainable_weights]
    stream = mixed_stream()
    history = model.fit(stream, epochs=1, steps_per_epoch=STEPS, verbose=0)
    changed = [
        not np.array_equal(old, weight.numpy())
        for old, weight in zip(before, model.trainable_weights, strict=True)
    ]
    return model, {"loss": history.history["loss"], "changed": changed, "spec": stream.element_spec}


@pytest.fixture(scope="module", params=POLICIES)
def policy(request):
    return request.param


@pytest.fixture(scope="module")
def trained(policy):
    """The tiny model of `policy` after STEPS steps the demo's way (one-frame pass through XLA):
    the model of the forward, .keras and export stages."""
    return train(policy, "xla_one_frame")


def frames_for(num_frames, batch=2, size=16, seed=1):
    rng = np.random.default_rng(seed + num_frames)
    return tf.constant(rng.normal(size=(batch, num_frames, size, size, 3)).astype("float32"))


@pytest.mark.parametrize("mode", ("eager", "tf_function", "jit_compile"))
def test_forward(trained, policy, mode):
    model, _ = trained
    assert model.dtype_policy.name == policy
    assert model.backbone.compute_dtype == COMPUTE_DTYPES[policy]
    call = {
        "eager": model,
        "tf_function": tf.function(model),
        "jit_compile": tf.function(model, jit_compile=True),
    }[mode]
    tolerance = SelfCheckTolerance.for_model(model)
    # A clip, an image, and a clip longer than the configured T (embeddings resized).
    for frames in (frames_for(2), frames_for(1), frames_for(3, size=24)):
        expected = model(frames, training=False)
        got = call(frames, training=False)
        for head, logits in got.items():
            assert logits.dtype == tf.float32 and np.all(np.isfinite(logits))
            np.testing.assert_array_less(
                np.abs(logits - expected[head]),
                tolerance.allowed("logits", expected[head].numpy()) + 1e-7,
            )
    features = model.backbone(frames_for(1), training=False)
    assert features.dtype == COMPUTE_DTYPES[policy]


@pytest.mark.parametrize("mode", TRAIN_MODES)
def test_training_step(trained, policy, mode):
    model, result = trained if mode == "xla_one_frame" else train(policy, mode)
    assert len(result["loss"]) == 1 and np.isfinite(result["loss"][0])
    assert int(model.optimizer.iterations.numpy()) == STEPS
    assert all(result["changed"]), "a weight was not updated"
    if policy == "mixed_float16":
        # Keras wraps the optimizer, the trainer scales the loss by its scale, and the wrapper
        # counts a step only when the unscaled gradients were finite: all of them here.
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    # (ops_per_branch reads the step's one `cond`; mixed_float16's LossScaleOptimizer adds its own.)
    if mode in ("tf_function", "xla_one_frame") and policy != "mixed_float16":
        # The step branches on T; with the one-frame pass, that branch's matrix products
        # all run inside the XLA-compiled call.
        matmuls = ops_per_branch(model, result["spec"], MATMULS)
        assert (matmuls["then"] == 0) == (mode == "xla_one_frame") and matmuls["else"] > 0


def test_keras_file_round_trip(trained, policy, tmp_path):
    model, _ = trained
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.dtype_policy.name == policy and type(loaded.optimizer) is type(model.optimizer)
    for frames in (frames_for(2), frames_for(1)):
        expected = model(frames, training=False)
        for head, logits in loaded(frames, training=False).items():
            np.testing.assert_array_equal(logits, expected[head])
    assert int(loaded.optimizer.iterations.numpy()) == STEPS


def test_export_self_check_and_serving_without_cover_tf(trained, policy, tmp_path):
    model, _ = trained
    summary = export_model(model, head_specs(model), tmp_path / "cover", top_k=2, limits=LIMITS)
    tolerance = SelfCheckTolerance.for_model(model)
    assert summary["self_check_tolerance"]["compute_dtype"] == COMPUTE_DTYPES[policy]
    metadata = json.loads((pathlib.Path(summary["path"]) / METADATA_FILE).read_text())
    assert metadata["self_check"]["checked"] and metadata["self_check"]["rtol"] == tolerance.rtol
    frames = np.random.default_rng(2).integers(0, 256, (2, 3, 20, 18, 3), dtype=np.uint8)
    outputs, dtypes = serve_without_cover_tf(summary["path"], frames, tmp_path)
    class_names = {head: [f"class_{i}" for i in range(count)] for head, count in HEADS.items()}
    loaded = tf.saved_model.load(summary["path"])
    check_served(outputs, dtypes, loaded, frames, tolerance, class_names)
