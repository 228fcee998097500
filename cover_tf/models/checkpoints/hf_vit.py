"""HF ViT image checkpoints (`ViTModel` / `ViTForImageClassification`) as image weights."""

import numpy as np

from cover_tf.models.checkpoints import hf_format
from cover_tf.models.checkpoints.inflation import VIT_PIXEL_MEAN, VIT_PIXEL_STD, ImageWeights


def canonical_from_hf_vit(config, weights):
    """Canonical (image) weights of an HF `ViTModel` / `ViTForImageClassification`: each layer's
    attention as the `spatial` branch."""
    weights = hf_format.strip_prefix(weights, ("vit.",))
    canonical = {}
    hf_format.embeddings(weights, canonical)
    for index in range(config["num_hidden_layers"]):
        layer, block = f"encoder.layer.{index}", f"block_{index}"
        hf_format.put_norm(canonical, f"{block}/spatial_norm", weights, f"{layer}.layernorm_before")
        parts = [
            hf_format.linear(weights, f"{layer}.attention.attention.{part}")
            for part in ("query", "key", "value")
        ]
        qkv_kernel = np.concatenate([kernel for kernel, _ in parts], axis=1)
        qkv_bias = np.concatenate([bias for _, bias in parts], axis=0)
        hf_format.put(canonical, f"{block}/spatial_attention/qkv", (qkv_kernel, qkv_bias))
        hf_format.put(
            canonical,
            f"{block}/spatial_attention/proj",
            hf_format.linear(weights, f"{layer}.attention.output.dense"),
        )
        hf_format.mlp(weights, layer, block, canonical)
    hf_format.put_norm(canonical, "final_norm", weights, "layernorm")
    return canonical


def read_hf_vit(checkpoint_dir):
    """The `ImageWeights` of an HF ViT `save_pretrained` directory."""
    config, weights, preprocessor = hf_format.read_hf_checkpoint(checkpoint_dir)
    if config.get("model_type") != "vit":
        raise ValueError(f"{checkpoint_dir}: model_type {config.get('model_type')!r} is not 'vit'")
    mean, std = hf_format.pixel_stats(preprocessor, VIT_PIXEL_MEAN, VIT_PIXEL_STD)
    return ImageWeights(
        canonical=canonical_from_hf_vit(config, weights),
        sizes={
            "hidden_size": config["hidden_size"],
            "num_layers": config["num_hidden_layers"],
            "num_heads": config["num_attention_heads"],
            "mlp_dim": config["intermediate_size"],
            "patch_size": config["patch_size"],
        },
        image_size=config["image_size"],
        layer_norm_epsilon=config.get("layer_norm_eps", 1e-12),
        qkv_bias=config.get("qkv_bias", True),
        pixel_mean=mean,
        pixel_std=std,
    )
