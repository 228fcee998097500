"""Our TimeSformer against the reference implementation (HF transformers, PyTorch CPU)."""

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from cover_tf.models.checkpoints import (
    CheckpointMismatchError,
    cover_from_hf_timesformer,
    cover_from_image_checkpoint,
)
from tests.models.reference_models import clips, hf_timesformer, hf_vit, to_torch_layout

pytestmark = pytest.mark.reference


@pytest.mark.parametrize(
    "config",
    [
        dict(attention_type="divided_space_time"),
        dict(attention_type="joint_space_time"),
        dict(
            attention_type="divided_space_time",
            num_frames=3,
            image_size=48,
            patch_size=16,
            hidden_size=48,
            num_attention_heads=3,
            num_hidden_layers=3,
            intermediate_size=96,
        ),
    ],
    ids=["divided", "joint", "divided-3x48-p16-L3"],
)
def test_converted_timesformer_matches_hf_logits(tmp_path, config):
    reference = hf_timesformer(tmp_path, **config)
    model = cover_from_hf_timesformer(tmp_path, head_name="k400")
    cfg = reference.config
    frames = clips(3, cfg.num_frames, cfg.image_size)
    with torch.no_grad():
        expected = reference(pixel_values=to_torch_layout(frames)).logits.numpy()
    logits = model(frames)["k400"].numpy()
    assert logits.shape == expected.shape
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


def test_space_only_follows_original_frame_averaging(tmp_path):
    # HF's space_only returns per-frame logits; the original TimeSformer averages frames' tokens
    # before the final norm. On each clip: LayerNorm(mean_t CLS_t) -> classifier.
    reference = hf_timesformer(tmp_path, attention_type="space_only")
    model = cover_from_hf_timesformer(tmp_path, head_name="k400")
    frames = clips(2, 4, 32)
    with torch.no_grad():
        outputs = reference.timesformer(
            pixel_values=to_torch_layout(frames), output_hidden_states=True
        )
        last = outputs.hidden_states[-1]  # [B*T, N+1, D], before the final LayerNorm
        cls = last[:, 0].reshape(2, 4, -1).mean(1)
        expected = reference.classifier(reference.timesformer.layernorm(cls)).numpy()
    np.testing.assert_allclose(model(frames)["k400"].numpy(), expected, atol=1e-4, rtol=0)


def test_space_only_static_clip_equals_hf_per_frame_logits(tmp_path):
    reference = hf_timesformer(tmp_path, attention_type="space_only")
    model = cover_from_hf_timesformer(tmp_path, head_name="k400")
    frame = clips(2, 1, 32)
    frames = np.repeat(frame, 4, axis=1)
    with torch.no_grad():
        per_frame = reference(pixel_values=to_torch_layout(frames)).logits.numpy().reshape(2, 4, -1)
    ours = model(frames)["k400"].numpy()
    for t in range(4):
        np.testing.assert_allclose(ours, per_frame[:, t], atol=1e-4, rtol=0)


@pytest.mark.parametrize("num_frames", [1, 4, 8])
def test_vit_initialised_timesformer_reproduces_vit_cls_on_static_clip(tmp_path, num_frames):
    vit = hf_vit(tmp_path)
    model = cover_from_image_checkpoint(tmp_path, {"imagenet": 10}, num_frames=4)
    image = clips(2, 1, 32, seed=3)
    with torch.no_grad():
        expected = vit(pixel_values=to_torch_layout(image)[:, 0]).last_hidden_state[:, 0].numpy()
    features = model.backbone(np.repeat(image, num_frames, axis=1)).numpy()
    np.testing.assert_allclose(features, expected, atol=1e-4, rtol=0)


def test_vit_npz_release_layout_imports_like_hf(tmp_path):
    vit = hf_vit(tmp_path / "hf")
    npz = tmp_path / "ViT-test.npz"
    np.savez(
        npz,
        **_vit_release_arrays(vit.config, load_file(str(tmp_path / "hf" / "model.safetensors"))),
    )
    model = cover_from_image_checkpoint(
        npz, {"imagenet": 10}, num_frames=2, layer_norm_epsilon=1e-12
    )
    image = clips(2, 1, 32, seed=4)
    with torch.no_grad():
        expected = vit(pixel_values=to_torch_layout(image)[:, 0]).last_hidden_state[:, 0].numpy()
    np.testing.assert_allclose(
        model.backbone(np.repeat(image, 2, axis=1)).numpy(), expected, atol=1e-4
    )


def test_image_init_copies_spatial_into_temporal_and_zeroes_temporal_fc(tmp_path):
    hf_vit(tmp_path)
    model = cover_from_image_checkpoint(tmp_path, {"imagenet": 10}, num_frames=8, image_size=48)
    block = model.backbone.blocks[0]
    np.testing.assert_array_equal(
        block.temporal_attention.qkv.kernel.numpy(), block.spatial_attention.qkv.kernel.numpy()
    )
    np.testing.assert_array_equal(
        block.temporal_norm.gamma.numpy(), block.spatial_norm.gamma.numpy()
    )
    assert not np.any(block.temporal_fc.kernel.numpy()) and not np.any(
        block.temporal_fc.bias.numpy()
    )
    assert not np.any(model.backbone.patch_embedding.time_embedding.numpy())
    # 32 px / patch 8 -> 4x4 grid resized to 6x6 for 48 px.
    assert model.backbone.patch_embedding.position_embedding.shape == (1, 37, 32)


def test_shape_mismatch_names_parameter_and_both_shapes(tmp_path):
    hf_timesformer(tmp_path)
    from cover_tf.models import TimeSformerBackbone
    from cover_tf.models.checkpoints import (
        assign_backbone_weights,
        canonical_from_hf_timesformer,
        read_hf_checkpoint,
    )

    config, weights, _ = read_hf_checkpoint(tmp_path)
    backbone = TimeSformerBackbone(
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        mlp_dim=128,
        patch_size=8,
        num_frames=4,
        image_size=32,
    )
    with pytest.raises(
        CheckpointMismatchError, match=r"mlp_dense_1/kernel.*\(32, 64\).*\(32, 128\)"
    ):
        assign_backbone_weights(
            backbone, canonical_from_hf_timesformer(config, weights), allow_missing=()
        )


def _vit_release_arrays(cfg, state):
    """HF ViT checkpoint weights in the original ViT release's `.npz` naming and layout."""
    width, heads = cfg.hidden_size, cfg.num_attention_heads
    arrays = {
        "cls": state["embeddings.cls_token"],
        "Transformer/posembed_input/pos_embedding": state["embeddings.position_embeddings"],
        "embedding/kernel": state["embeddings.patch_embeddings.projection.weight"].transpose(
            2, 3, 1, 0
        ),
        "embedding/bias": state["embeddings.patch_embeddings.projection.bias"],
        "Transformer/encoder_norm/scale": state["layernorm.weight"],
        "Transformer/encoder_norm/bias": state["layernorm.bias"],
    }
    for i in range(cfg.num_hidden_layers):
        src, dst = f"encoder.layer.{i}", f"Transformer/encoderblock_{i}"
        att = f"{dst}/MultiHeadDotProductAttention_1"
        for part in ("query", "key", "value"):
            arrays[f"{att}/{part}/kernel"] = state[
                f"{src}.attention.attention.{part}.weight"
            ].T.reshape(width, heads, width // heads)
            arrays[f"{att}/{part}/bias"] = state[f"{src}.attention.attention.{part}.bias"].reshape(
                heads, -1
            )
        arrays[f"{att}/out/kernel"] = state[f"{src}.attention.output.dense.weight"].T.reshape(
            heads, -1, width
        )
        arrays[f"{att}/out/bias"] = state[f"{src}.attention.output.dense.bias"]
        arrays[f"{dst}/LayerNorm_0/scale"] = state[f"{src}.layernorm_before.weight"]
        arrays[f"{dst}/LayerNorm_0/bias"] = state[f"{src}.layernorm_before.bias"]
        arrays[f"{dst}/LayerNorm_2/scale"] = state[f"{src}.layernorm_after.weight"]
        arrays[f"{dst}/LayerNorm_2/bias"] = state[f"{src}.layernorm_after.bias"]
        arrays[f"{dst}/MlpBlock_3/Dense_0/kernel"] = state[f"{src}.intermediate.dense.weight"].T
        arrays[f"{dst}/MlpBlock_3/Dense_0/bias"] = state[f"{src}.intermediate.dense.bias"]
        arrays[f"{dst}/MlpBlock_3/Dense_1/kernel"] = state[f"{src}.output.dense.weight"].T
        arrays[f"{dst}/MlpBlock_3/Dense_1/bias"] = state[f"{src}.output.dense.bias"]
    return arrays
