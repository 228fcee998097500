"""Original ViT release `.npz` image checkpoints (google-research/vision_transformer layout)."""

import numpy as np

from cover_tf.models.checkpoints.inflation import ImageWeights


def canonical_from_vit_npz(arrays):
    """Canonical weights (attention as the `spatial` branch) and sizes of a ViT release `.npz`."""
    canonical = {
        "cls": arrays["cls"],
        "pos": arrays["Transformer/posembed_input/pos_embedding"],
        "patch/kernel": arrays["embedding/kernel"],
        "patch/bias": arrays["embedding/bias"],
        "final_norm/gamma": arrays["Transformer/encoder_norm/scale"],
        "final_norm/beta": arrays["Transformer/encoder_norm/bias"],
    }
    num_layers = 0
    while f"Transformer/encoderblock_{num_layers}/LayerNorm_0/scale" in arrays:
        num_layers += 1
    width = canonical["cls"].shape[-1]
    num_heads = None
    for index in range(num_layers):
        source, block = f"Transformer/encoderblock_{index}", f"block_{index}"
        attention = f"{source}/MultiHeadDotProductAttention_1"
        num_heads = arrays[f"{attention}/query/kernel"].shape[1]
        canonical[f"{block}/spatial_norm/gamma"] = arrays[f"{source}/LayerNorm_0/scale"]
        canonical[f"{block}/spatial_norm/beta"] = arrays[f"{source}/LayerNorm_0/bias"]
        parts = ("query", "key", "value")
        kernels = [arrays[f"{attention}/{part}/kernel"].reshape(width, width) for part in parts]
        biases = [arrays[f"{attention}/{part}/bias"].reshape(width) for part in parts]
        canonical[f"{block}/spatial_attention/qkv/kernel"] = np.concatenate(kernels, axis=1)
        canonical[f"{block}/spatial_attention/qkv/bias"] = np.concatenate(biases)
        canonical[f"{block}/spatial_attention/proj/kernel"] = arrays[
            f"{attention}/out/kernel"
        ].reshape(width, width)
        canonical[f"{block}/spatial_attention/proj/bias"] = arrays[f"{attention}/out/bias"]
        canonical[f"{block}/mlp_norm/gamma"] = arrays[f"{source}/LayerNorm_2/scale"]
        canonical[f"{block}/mlp_norm/beta"] = arrays[f"{source}/LayerNorm_2/bias"]
        for dense in (0, 1):
            for key in ("kernel", "bias"):
                canonical[f"{block}/mlp_dense_{dense + 1}/{key}"] = arrays[
                    f"{source}/MlpBlock_3/Dense_{dense}/{key}"
                ]
    sizes = {
        "hidden_size": width,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "mlp_dim": canonical["block_0/mlp_dense_1/kernel"].shape[1],
        "patch_size": canonical["patch/kernel"].shape[0],
    }
    return {name: np.asarray(value, np.float32) for name, value in canonical.items()}, sizes


def read_vit_npz(path):
    """The `ImageWeights` of a ViT release `.npz` (read with `allow_pickle=False`)."""
    with np.load(path, allow_pickle=False) as arrays:
        canonical, sizes = canonical_from_vit_npz(dict(arrays))
    grid = int(round((canonical["pos"].shape[1] - 1) ** 0.5))
    return ImageWeights(canonical, sizes, image_size=grid * sizes["patch_size"])
