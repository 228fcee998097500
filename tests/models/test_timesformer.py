"""Structural tests of the backbone and the CoVeR model on a tiny configuration."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cover_tf.layers import PatchEmbedding, TimeSformerBlock
from cover_tf.models import CoVeRModel, TimeSformerBackbone, build_cover_model, decode_variant
from cover_tf.models.timesformer_backbone import sinusoidal_time_embedding

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, patch_size=8, num_frames=4, image_size=32)
HEADS = {"motion": 5, "appearance": 3, "images": 7}


def tiny_model(**overrides):
    return build_cover_model(HEADS, **{**TINY, **overrides})


def clip(batch=2, frames=4, height=32, width=32, seed=0):
    return (
        np.random.default_rng(seed).normal(size=(batch, frames, height, width, 3)).astype("float32")
    )


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time", "space_only"])
@pytest.mark.parametrize("frames", [1, 4, 8, 16])
def test_one_model_takes_any_clip_length(attention_type, frames):
    model = tiny_model(attention_type=attention_type)
    outputs = model(clip(frames=frames))
    assert set(outputs) == set(HEADS)
    for name, num_classes in HEADS.items():
        assert outputs[name].shape == (2, num_classes)
        assert outputs[name].dtype == tf.float32
        assert np.all(np.isfinite(outputs[name].numpy()))


def test_other_resolutions_and_non_square_frames():
    model = tiny_model()
    assert model(clip(height=48, width=64))["motion"].shape == (2, 5)
    assert model(clip(frames=1, height=16, width=24))["images"].shape == (2, 7)


def test_embedding_resize_is_exact_identity_at_configured_size():
    model = tiny_model()
    model.backbone.patch_embedding.time_embedding.assign(np.random.rand(1, 4, 32).astype("float32"))
    embedding = model.backbone.patch_embedding
    static = embedding(clip())
    dynamic = tf.function(
        lambda x: embedding(x), input_signature=[tf.TensorSpec([None, None, None, None, 3])]
    )(clip())
    for ours, theirs in zip(static, dynamic, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_time_embedding_is_interpolated_for_other_lengths():
    embedding = PatchEmbedding(16, 8, 16, num_frames=4)
    embedding.build((None, None, None, None, 3))
    steps = np.arange(4, dtype="float32")[None, :, None] * np.ones((1, 4, 16), "float32")
    embedding.time_embedding.assign(steps)
    resized = embedding.resized_time_embedding(tf.constant(8)).numpy()[0, :, 0, 0]
    assert resized.shape == (8,)
    assert np.all(np.diff(resized) >= 0) and resized[0] == 0.0 and resized[-1] == 3.0


def test_video_and_image_paths_are_traceable_with_dynamic_shapes():
    model = tiny_model()
    serve = tf.function(model, input_signature=[tf.TensorSpec([None, None, None, None, 3])])
    eager = model(clip(frames=8))
    traced = serve(tf.constant(clip(frames=8)))
    np.testing.assert_allclose(traced["motion"].numpy(), eager["motion"].numpy(), atol=1e-5)
    assert serve(tf.constant(clip(frames=1)))["images"].shape == (2, 7)


def test_temporal_branch_on_single_frame_flag():
    with_temporal = tiny_model(temporal_on_single_frame=True)
    without = tiny_model(temporal_on_single_frame=False)
    without.set_weights(with_temporal.get_weights())
    image = clip(frames=1)
    # temporal_fc is zero at init: the temporal branch is then an identity on T=1.
    np.testing.assert_allclose(
        with_temporal(image)["images"].numpy(), without(image)["images"].numpy(), atol=1e-6
    )
    for block in with_temporal.backbone.blocks:
        block.temporal_fc.kernel.assign(np.random.rand(32, 32).astype("float32"))
    assert not np.allclose(with_temporal(image)["images"].numpy(), without(image)["images"].numpy())
    # ... but on clips, both run it.
    without.set_weights(with_temporal.get_weights())
    np.testing.assert_allclose(
        with_temporal(clip())["motion"].numpy(), without(clip())["motion"].numpy(), atol=1e-6
    )


def test_config_round_trip_rebuilds_the_same_architecture():
    model = tiny_model(attention_type="joint_space_time", drop_path_rate=0.1)
    clone = CoVeRModel.from_config(model.get_config())
    clone.build()
    assert clone.get_config() == model.get_config()
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    backbone = model.backbone
    assert (
        TimeSformerBackbone.from_config(backbone.get_config()).get_config() == backbone.get_config()
    )


def test_keras_save_and_load_give_identical_outputs(tmp_path):
    model = tiny_model()
    path = tmp_path / "cover.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, CoVeRModel)
    assert loaded.backbone.pixel_mean == model.backbone.pixel_mean
    for frames in (1, 4, 6):
        expected, actual = model(clip(frames=frames)), loaded(clip(frames=frames))
        for name in HEADS:
            np.testing.assert_array_equal(actual[name].numpy(), expected[name].numpy())


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_float32_logits(policy):
    model = tiny_model(dtype=policy)
    reference = tiny_model()
    reference.set_weights(model.get_weights())
    outputs = model(clip())
    assert all(value.dtype == tf.float32 for value in outputs.values())
    assert model.backbone.blocks[0].mlp_dense_1.compute_dtype == policy.split("_")[1]
    assert model.backbone.blocks[0].mlp_dense_1.kernel.dtype == "float32"
    np.testing.assert_allclose(
        outputs["motion"].numpy(), reference(clip())["motion"].numpy(), atol=0.1
    )


def test_drop_path_grows_linearly_and_only_acts_in_training():
    backbone = TimeSformerBackbone(**{**TINY, "num_layers": 5}, drop_path_rate=0.4)
    rates = [block.drop_path_rate for block in backbone.blocks]
    np.testing.assert_allclose(rates, [0.0, 0.1, 0.2, 0.3, 0.4])
    backbone.build()
    frames = clip()
    np.testing.assert_array_equal(
        backbone(frames).numpy(), backbone(frames, training=False).numpy()
    )
    assert not np.allclose(backbone(frames, training=True).numpy(), backbone(frames).numpy())


def test_variants_and_explicit_overrides():
    assert decode_variant("B/16") == dict(
        hidden_size=768, num_layers=12, num_heads=12, mlp_dim=3072, patch_size=16
    )
    assert decode_variant("L/14")["num_layers"] == 24
    backbone = TimeSformerBackbone(variant="Ti/16", num_layers=2)
    assert (backbone.hidden_size, backbone.num_layers, backbone.num_heads) == (192, 2, 3)
    with pytest.raises(ValueError, match="'X/16'"):
        decode_variant("X/16")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(attention_type="space_time"), "attention_type must be one of"),
        (dict(num_heads=3), "must divide"),
        (dict(image_size=30), "multiple of patch_size"),
        (dict(pixel_mean=(0.5,)), "3 values"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(**kwargs)


def test_bad_head_names_are_rejected():
    backbone = TimeSformerBackbone(**TINY)
    with pytest.raises(ValueError, match="'kinetics/400'"):
        CoVeRModel(backbone, {"kinetics/400": 400})
    with pytest.raises(ValueError, match="at least one"):
        CoVeRModel(backbone, {})


def test_block_serialises_its_constructor_arguments():
    block = TimeSformerBlock(32, 4, 64, attention_type="space_only", drop_path_rate=0.2)
    config = block.get_config()
    assert TimeSformerBlock.from_config(config).get_config() == config


def gradients(model, frames):
    @tf.function
    def step(frames):
        with tf.GradientTape() as tape:
            logits = model(frames, training=True)
            loss = sum(tf.reduce_sum(tf.square(value)) for value in logits.values())
        return loss, tape.gradient(loss, model.trainable_variables)

    return step(frames)


def attention_over_time(block, tokens, training, seed):
    """The temporal branch as attention computes it, whatever T (the reference)."""
    return tokens + block._attention_residual(tokens, training, seed)


def temporal_branch(branch, tokens, variables, training, seed, frames=None):
    """(output, gradients of sum(output * weights) w.r.t. tokens and `variables`, op types of
    the traced graph) of `branch(tokens, training, seed)`, traced with `frames` static frames."""
    weights = tf.constant(np.random.default_rng(1).normal(size=tokens.shape).astype("float32"))
    spec = tf.TensorSpec((None, frames, *tokens.shape[2:]), tf.float32)

    @tf.function(input_signature=[spec])
    def run(tokens):
        with tf.GradientTape() as tape:
            tape.watch(tokens)
            outputs = branch(tokens, training, seed)
            loss = tf.reduce_sum(outputs * weights)
        return outputs, tape.gradient(loss, [tokens, *variables])

    graph_ops = {op.type for op in run.get_concrete_function().graph.get_operations()}
    outputs, grads = run(tokens)
    return outputs.numpy(), [None if g is None else g.numpy() for g in grads], graph_ops


@pytest.mark.parametrize("qkv_bias", [True, False])
def test_temporal_branch_on_one_frame_is_attention_over_one_key(qkv_bias):
    """On an image (T = 1) the temporal branch runs as one matrix product (no softmax), with the
    outputs and gradients of attention over a single key, drop path included; where T is only
    known at run time (the mixed stream's one training graph), attention runs."""
    block = TimeSformerBlock(32, 4, 64, drop_path_rate=0.5, qkv_bias=qkv_bias)
    block.build(None)
    rng = np.random.default_rng(0)
    for variable in block.trainable_variables:  # temporal_fc and every bias non-zero
        variable.assign(rng.normal(scale=0.3, size=variable.shape).astype("float32"))
    variables = block.trainable_variables
    seed = tf.constant([3, 4])
    outputs = {}
    for frames, static, training in [(1, 1, True), (1, 1, False), (1, None, True), (3, None, True)]:
        tokens = tf.constant(rng.normal(size=(6, frames, 5, 32)).astype("float32"))
        fast, fast_grads, fast_ops = temporal_branch(
            block._temporal, tokens, variables, training, seed, static
        )
        slow, slow_grads, slow_ops = temporal_branch(
            lambda *args: attention_over_time(block, *args), tokens, variables, training, seed
        )
        assert "Softmax" in slow_ops
        assert ("Softmax" in fast_ops) == (static is None)
        np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
        for a, b, variable in zip(fast_grads, slow_grads, [None, *variables], strict=True):
            name = "tokens" if variable is None else variable.path
            if b is None:  # the spatial branch and the MLP are not on this path
                assert a is None, name
            else:
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=name)
        outputs[frames, static, training] = (tokens, fast)
    tokens, trained = outputs[1, 1, True]
    assert not np.allclose(trained, block._temporal(tokens, False, seed))  # drop path acted
    # Dropout active in training takes attention, even on one frame.
    dropout = TimeSformerBlock(32, 4, 64, dropout_rate=0.1)
    dropout.build(None)
    args = (tokens, dropout.trainable_variables, True, seed, 1)
    assert "Softmax" in temporal_branch(dropout._temporal, *args)[2]


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time"])
def test_remat_gives_the_same_gradients_with_drop_path(attention_type):
    """Rematerialised blocks recompute their forward pass, drop path masks included."""
    plain = tiny_model(attention_type=attention_type, drop_path_rate=0.5)
    remat = tiny_model(attention_type=attention_type, drop_path_rate=0.5, remat=True)
    remat.set_weights(plain.get_weights())
    for a, b in zip(plain.backbone.blocks, remat.backbone.blocks, strict=True):
        if a.drop_path.seed_generator is not None:
            b.drop_path.seed_generator.state.assign(a.drop_path.seed_generator.state.value)
    frames = tf.constant(clip(batch=4))
    plain_loss, plain_grads = gradients(plain, frames)
    remat_loss, remat_grads = gradients(remat, frames)
    assert float(remat_loss) == pytest.approx(float(plain_loss), rel=1e-6)
    for a, b, variable in zip(plain_grads, remat_grads, plain.trainable_variables, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=variable.path)
    # Drop path is active: other draws of the masks give other losses. One draw alone can
    # repeat the first one's loss: only ~12 mask bits of the last block reach the pooled CLS
    # (it did once, in a `.ci/run` on a fresh clone), so any of 4 draws must differ.
    losses = [float(gradients(plain, frames)[0]) for _ in range(4)]
    assert any(loss != pytest.approx(float(plain_loss), rel=1e-6) for loss in losses)


def test_remat_round_trips_and_refuses_dropout():
    model = tiny_model(remat=True)
    assert CoVeRModel.from_config(model.get_config()).backbone.remat is True
    with pytest.raises(ValueError, match="remat.*dropout_rate"):
        tiny_model(remat=True, dropout_rate=0.1)


@pytest.mark.parametrize("init", ["normal", "sinusoidal"])
def test_temporal_init_from_scratch_lets_an_untrained_model_tell_frame_order(init):
    # The reference's zero init (time embedding, temporal_fc) makes a fresh model blind to
    # frame order; "normal" and "sinusoidal" (for training from scratch) start it seeing time.
    frames = clip(frames=4)
    features = {}
    for kind in ("zeros", init):
        keras.utils.set_random_seed(0)
        backbone = tiny_model(temporal_init=kind).backbone
        features[kind] = (backbone(frames).numpy(), backbone(frames[:, ::-1]).numpy())
        time_embedding = backbone.patch_embedding.time_embedding.numpy()
        assert np.any(time_embedding != 0) == (kind != "zeros")
        kernels = [block.temporal_fc.kernel.numpy() for block in backbone.blocks]
        assert all(np.any(kernel != 0) == (kind != "zeros") for kernel in kernels)
    np.testing.assert_allclose(*features["zeros"], atol=1e-5)
    assert np.abs(features[init][0] - features[init][1]).max() > 1e-3


def test_sinusoidal_time_embedding_gives_every_frame_its_own_unit_scale_code():
    table = sinusoidal_time_embedding(8, 32)[0]
    assert table.shape == (8, 32)
    np.testing.assert_allclose(np.linalg.norm(table, axis=1), 4.0, rtol=1e-5)  # sqrt(D / 2)
    distances = np.linalg.norm(table[:, None] - table[None], axis=-1)
    assert distances[~np.eye(8, dtype=bool)].min() > 0.1


def test_temporal_init_round_trips_and_rejects_unknown_values(tmp_path):
    model = tiny_model(temporal_init="normal")
    assert CoVeRModel.from_config(model.get_config()).backbone.temporal_init == "normal"
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(
        loaded.backbone.patch_embedding.time_embedding.numpy(),
        model.backbone.patch_embedding.time_embedding.numpy(),
    )
    with pytest.raises(ValueError, match="temporal_init must be one of"):
        tiny_model(temporal_init="ones")


def difference_windows(frames, tubelet_size):
    """NumPy `[B, T, k, H, W, C]`: frame t's window (edge frames repeated), the centre frame at
    slice (k - 1) // 2 and differences of consecutive frames at the other slices."""
    centre, num_frames = (tubelet_size - 1) // 2, frames.shape[1]
    index = np.arange(num_frames)[:, None] + np.arange(tubelet_size)[None] - centre
    window = frames[:, np.clip(index, 0, num_frames - 1)]
    slices = window.copy()
    slices[:, :, :centre] = window[:, :, 1 : centre + 1] - window[:, :, :centre]
    slices[:, :, centre + 1 :] = window[:, :, centre + 1 :] - window[:, :, centre:-1]
    return slices


@pytest.mark.parametrize("tubelet_size", [2, 3])
def test_tubelet_embedding_projects_each_frames_window_in_difference_form(tubelet_size):
    embedding = PatchEmbedding(16, 8, 32, num_frames=5, tubelet_size=tubelet_size)
    embedding.build((None, None, None, None, 3))
    kernel = embedding.projection.kernel
    assert tuple(kernel.shape) == (tubelet_size, 8, 8, 3, 16)
    kernel.assign(np.random.default_rng(1).normal(size=kernel.shape).astype("float32"))
    embedding.projection.bias.assign(np.linspace(-1, 1, 16).astype("float32"))
    still = np.repeat(clip(frames=1), 3, axis=1)
    for frames in (clip(frames=5), clip(frames=1), still):
        batch, num_frames = frames.shape[:2]
        windows = difference_windows(frames, tubelet_size)
        windows = windows.reshape(batch, num_frames, tubelet_size, 4, 8, 4, 8, 3)
        expected = np.einsum("btkyhxwc,khwcd->btyxd", windows, kernel.numpy())
        expected = expected.reshape(batch, num_frames, 16, 16) + embedding.projection.bias.numpy()
        expected += embedding.resized_position_embedding(4, 4).numpy()
        expected += embedding.resized_time_embedding(num_frames).numpy()
        _, patches = embedding(frames)
        np.testing.assert_allclose(patches.numpy(), expected, rtol=1e-4, atol=1e-4)
    # A still clip has zero differences: only the centre slice acts on it.
    _, patches = embedding(still)
    centre_only = np.zeros_like(kernel.numpy())
    centre_only[(tubelet_size - 1) // 2] = kernel.numpy()[(tubelet_size - 1) // 2]
    kernel.assign(centre_only)
    np.testing.assert_allclose(embedding(still)[1].numpy(), patches.numpy(), rtol=1e-5, atol=1e-5)


def test_tubelet_model_loaded_from_a_frame_wise_one_starts_equal_to_it():
    # A frame-wise kernel fills the tubelet's central slice (the others zero): images and clips
    # then give the frame-wise model's features, the reference's inflation extended to time.
    from cover_tf.models.checkpoints.weights import assign_backbone_weights, backbone_variables

    keras.utils.set_random_seed(0)
    frame_wise = tiny_model(temporal_init="normal").backbone
    tubelet = tiny_model(tubelet_size=2).backbone
    canonical = {name: v.numpy() for name, v in backbone_variables(frame_wise).items()}
    assign_backbone_weights(tubelet, canonical, allow_missing=())
    kernel = tubelet.patch_embedding.projection.kernel.numpy()
    np.testing.assert_array_equal(kernel[1], 0.0)
    for frames in (clip(frames=4), clip(frames=1)):
        np.testing.assert_allclose(tubelet(frames), frame_wise(frames), rtol=1e-5, atol=1e-5)
    assert np.abs(tubelet(clip(frames=4)) - tubelet(clip(frames=4)[:, ::-1])).max() > 1e-3


def test_tubelet_size_round_trips_and_rejects_bad_values(tmp_path):
    model = tiny_model(tubelet_size=2)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert loaded.backbone.tubelet_size == 2
    for frames in (1, 4):
        np.testing.assert_array_equal(
            loaded(clip(frames=frames))["motion"], model(clip(frames=frames))["motion"]
        )
    with pytest.raises(ValueError, match="tubelet_size must be an int >= 1"):
        tiny_model(tubelet_size=0)


@pytest.mark.parametrize("tubelet_size", [1, 2])
def test_tubelet_stride_embeds_every_strided_frames_window(tubelet_size):
    """Stride s keeps the windows of frames 0, s, 2s, ...: the stride-1 tokens of those frames
    (time embeddings aside), ceil(T / s) of them; the time embedding has ceil(num_frames / s)
    steps."""
    dense = PatchEmbedding(16, 8, 32, num_frames=8, tubelet_size=tubelet_size)
    strided = PatchEmbedding(16, 8, 32, num_frames=8, tubelet_size=tubelet_size, tubelet_stride=2)
    for embedding in (dense, strided):
        embedding.build((None, None, None, None, 3))
    strided.set_weights(
        [np.zeros((1, 4, 16)) if w.shape == (1, 8, 16) else w for w in dense.get_weights()]
    )
    assert tuple(strided.time_embedding.shape) == (1, 4, 16)
    for frames in (8, 5, 1):
        video = clip(frames=frames)
        expected = dense(video)[1].numpy()[:, ::2]
        _, patches = strided(video)
        assert patches.shape[1] == -(-frames // 2)
        np.testing.assert_allclose(patches.numpy(), expected, rtol=1e-5, atol=1e-5)
        assert strided.compute_output_shape(video.shape)[1][1] == patches.shape[1]


def test_tubelet_stride_model_round_trips_and_rejects_bad_values(tmp_path):
    model = tiny_model(tubelet_size=2, tubelet_stride=2, num_frames=8, temporal_init="sinusoidal")
    time_embedding = model.backbone.patch_embedding.time_embedding.numpy()
    np.testing.assert_allclose(time_embedding, sinusoidal_time_embedding(4, 32), atol=1e-6)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert loaded.backbone.tubelet_stride == 2
    for frames in (1, 4, 8):
        np.testing.assert_array_equal(
            loaded(clip(frames=frames))["motion"], model(clip(frames=frames))["motion"]
        )
    # Initialising from a model with a token per frame resizes its 8 time steps to 4.
    from cover_tf.models.checkpoints.weights import load_backbone_from_model

    source = tiny_model(tubelet_size=2, num_frames=8, temporal_init="normal")
    load_backbone_from_model(model, source)
    loaded_time = model.backbone.patch_embedding.time_embedding.numpy()
    source_time = source.backbone.patch_embedding.time_embedding.numpy()
    assert loaded_time.shape == (1, 4, 32)
    np.testing.assert_allclose(loaded_time.mean(axis=1), source_time.mean(axis=1), atol=1e-5)
    with pytest.raises(ValueError, match="tubelet_stride must be an int >= 1"):
        tiny_model(tubelet_stride=0)
