"""Builders of random-init HF reference models (PyTorch, CPU) and their checkpoints for tests."""

import numpy as np
import torch
import transformers


def perturb_(model, seed=0, scale=0.02):
    """Adds noise to every parameter, so that zero biases, unit norms and zero-initialised
    parameters of a fresh model cannot hide a mapping error."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
    return model.eval()


def hf_timesformer(tmp_path, seed=0, **config):
    """A random HF TimesformerForVideoClassification, saved with save_pretrained in tmp_path."""
    torch.manual_seed(seed)
    defaults = dict(
        image_size=32,
        patch_size=8,
        num_frames=4,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=7,
    )
    defaults.update(config)
    model = transformers.TimesformerForVideoClassification(
        transformers.TimesformerConfig(**defaults)
    )
    perturb_(model, seed)
    model.save_pretrained(tmp_path)
    return model


def hf_vit(tmp_path, seed=0, **config):
    """A random HF ViTModel (no pooler), saved with save_pretrained in tmp_path."""
    torch.manual_seed(seed)
    defaults = dict(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
    )
    defaults.update(config)
    model = transformers.ViTModel(transformers.ViTConfig(**defaults), add_pooling_layer=False)
    perturb_(model, seed)
    model.save_pretrained(tmp_path)
    return model


def clips(batch, frames, size, seed=0):
    """Normalized-looking float clips `[B, T, H, W, 3]`."""
    return (
        np.random.default_rng(seed).normal(size=(batch, frames, size, size, 3)).astype(np.float32)
    )


def to_torch_layout(frames):
    """`[B, T, H, W, 3]` (ours) -> `[B, T, 3, H, W]` (HF)."""
    return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 1, 4, 2, 3)))
