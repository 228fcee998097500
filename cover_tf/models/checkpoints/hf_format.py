"""Reading HF `save_pretrained` checkpoints (safetensors, no pickle) into the canonical layout:
the parts HF TimeSformer and HF ViT share."""

import json
import pathlib

import numpy as np
from safetensors.numpy import load_file


def read_hf_checkpoint(checkpoint_dir):
    """`(config dict, {name: np.ndarray}, preprocessor config or None)` of a `save_pretrained` dir."""
    root = pathlib.Path(checkpoint_dir)
    config_path, weights_path = root / "config.json", root / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: an HF checkpoint directory holds config.json and "
                "model.safetensors (as save_pretrained writes them)"
            )
    config = json.loads(config_path.read_text())
    preprocessor_path = root / "preprocessor_config.json"
    preprocessor = (
        json.loads(preprocessor_path.read_text()) if preprocessor_path.is_file() else None
    )
    return config, load_file(str(weights_path)), preprocessor


def strip_prefix(weights, prefixes):
    """`weights` without the first of `prefixes` that some name starts with."""
    for prefix in prefixes:
        if any(name.startswith(prefix) for name in weights):
            return {
                name[len(prefix) :]: value
                for name, value in weights.items()
                if name.startswith(prefix)
            }
    return weights


def linear(weights, name):
    """Torch Linear `name.weight [out, in]` as a Keras `(kernel [in, out], bias)`."""
    return weights[f"{name}.weight"].T, weights[f"{name}.bias"]


def norm(weights, name):
    """Torch LayerNorm `name` as `(gamma, beta)`."""
    return weights[f"{name}.weight"], weights[f"{name}.bias"]


def put(canonical, prefix, pair, names=("kernel", "bias")):
    for key, value in zip(names, pair, strict=True):
        canonical[f"{prefix}/{key}"] = np.asarray(value, dtype=np.float32)


def put_norm(canonical, prefix, weights, name):
    put(canonical, prefix, norm(weights, name), ("gamma", "beta"))


def embeddings(weights, canonical):
    """CLS token, position embedding and patch projection (HF ViT and TimeSformer alike)."""
    canonical["cls"] = weights["embeddings.cls_token"]
    canonical["pos"] = weights["embeddings.position_embeddings"]
    conv = weights["embeddings.patch_embeddings.projection.weight"]  # [D, 3, P, P]
    canonical["patch/kernel"] = conv.transpose(2, 3, 1, 0)
    canonical["patch/bias"] = weights["embeddings.patch_embeddings.projection.bias"]


def mlp(weights, layer, block, canonical):
    """A layer's MLP and its LayerNorm (HF ViT and TimeSformer alike)."""
    put_norm(canonical, f"{block}/mlp_norm", weights, f"{layer}.layernorm_after")
    put(canonical, f"{block}/mlp_dense_1", linear(weights, f"{layer}.intermediate.dense"))
    put(canonical, f"{block}/mlp_dense_2", linear(weights, f"{layer}.output.dense"))


def pixel_stats(preprocessor, default_mean, default_std):
    """`(image_mean, image_std)` of a preprocessor config, else the defaults."""
    if preprocessor and "image_mean" in preprocessor and "image_std" in preprocessor:
        return tuple(preprocessor["image_mean"]), tuple(preprocessor["image_std"])
    return default_mean, default_std
