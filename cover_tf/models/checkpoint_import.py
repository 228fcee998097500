"""Import of pre-trained weights: HF TimeSformer video checkpoints, HF ViT and original ViT `.npz`
image checkpoints. Checkpoints are read without pickle (safetensors, `np.load(allow_pickle=False)`).

Every source is first mapped onto one canonical layout (a dict of NumPy arrays in Keras kernel
orientation), then assigned to a `TimeSformerBackbone`, checking every shape:
    cls [1,1,D]; pos [1,N+1,D]; time [1,T,D] (video checkpoints); patch/kernel [P,P,3,D];
    patch/bias [D]; final_norm/{gamma,beta}; and per block i, `block_i/<part>/...` with parts
    spatial_norm, spatial_attention/{qkv,proj}/{kernel,bias}, temporal_norm,
    temporal_attention/..., temporal_fc/{kernel,bias}, mlp_norm, mlp_dense_1, mlp_dense_2.
"""

import json
import pathlib

import numpy as np
import tensorflow as tf
from safetensors.numpy import load_file

from cover_tf.models.cover_model import CoVeRModel
from cover_tf.models.timesformer_backbone import TimeSformerBackbone

VIT_PIXEL_MEAN = (0.5, 0.5, 0.5)
VIT_PIXEL_STD = (0.5, 0.5, 0.5)


class CheckpointMismatchError(ValueError):
    """A checkpoint parameter whose shape does not fit the model's."""


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


def _strip_prefix(weights, prefixes):
    for prefix in prefixes:
        if any(name.startswith(prefix) for name in weights):
            return {
                name[len(prefix) :]: value
                for name, value in weights.items()
                if name.startswith(prefix)
            }
    return weights


def _linear(weights, name):
    """Torch Linear `name.weight [out, in]` as a Keras `(kernel [in, out], bias)`."""
    return weights[f"{name}.weight"].T, weights[f"{name}.bias"]


def _norm(weights, name):
    return weights[f"{name}.weight"], weights[f"{name}.bias"]


def _put(canonical, prefix, pair, names=("kernel", "bias")):
    for key, value in zip(names, pair, strict=True):
        canonical[f"{prefix}/{key}"] = np.asarray(value, dtype=np.float32)


def _hf_embeddings(weights, canonical):
    canonical["cls"] = weights["embeddings.cls_token"]
    canonical["pos"] = weights["embeddings.position_embeddings"]
    conv = weights["embeddings.patch_embeddings.projection.weight"]  # [D, 3, P, P]
    canonical["patch/kernel"] = conv.transpose(2, 3, 1, 0)
    canonical["patch/bias"] = weights["embeddings.patch_embeddings.projection.bias"]


def _hf_mlp(weights, layer, block, canonical):
    _put(
        canonical,
        f"{block}/mlp_norm",
        _norm(weights, f"{layer}.layernorm_after"),
        ("gamma", "beta"),
    )
    _put(canonical, f"{block}/mlp_dense_1", _linear(weights, f"{layer}.intermediate.dense"))
    _put(canonical, f"{block}/mlp_dense_2", _linear(weights, f"{layer}.output.dense"))


def canonical_from_hf_timesformer(config, weights):
    """Canonical weights of an HF `TimesformerModel` / `TimesformerForVideoClassification`."""
    weights = _strip_prefix(weights, ("timesformer.",))
    canonical = {}
    _hf_embeddings(weights, canonical)
    if "embeddings.time_embeddings" in weights:
        canonical["time"] = weights["embeddings.time_embeddings"]
    attention_type = config.get("attention_type", "divided_space_time")
    main = "spatial" if attention_type != "joint_space_time" else "space_time"
    for index in range(config["num_hidden_layers"]):
        layer, block = f"encoder.layer.{index}", f"block_{index}"
        _put(
            canonical,
            f"{block}/{main}_norm",
            _norm(weights, f"{layer}.layernorm_before"),
            ("gamma", "beta"),
        )
        _put(
            canonical,
            f"{block}/{main}_attention/qkv",
            _linear(weights, f"{layer}.attention.attention.qkv"),
        )
        _put(
            canonical,
            f"{block}/{main}_attention/proj",
            _linear(weights, f"{layer}.attention.output.dense"),
        )
        if attention_type == "divided_space_time":
            _put(
                canonical,
                f"{block}/temporal_norm",
                _norm(weights, f"{layer}.temporal_layernorm"),
                ("gamma", "beta"),
            )
            _put(
                canonical,
                f"{block}/temporal_attention/qkv",
                _linear(weights, f"{layer}.temporal_attention.attention.qkv"),
            )
            _put(
                canonical,
                f"{block}/temporal_attention/proj",
                _linear(weights, f"{layer}.temporal_attention.output.dense"),
            )
            _put(canonical, f"{block}/temporal_fc", _linear(weights, f"{layer}.temporal_dense"))
        _hf_mlp(weights, layer, block, canonical)
    _put(canonical, "final_norm", _norm(weights, "layernorm"), ("gamma", "beta"))
    return canonical


def canonical_from_hf_vit(config, weights):
    """Canonical (image) weights of an HF `ViTModel` / `ViTForImageClassification`."""
    weights = _strip_prefix(weights, ("vit.",))
    canonical = {}
    _hf_embeddings(weights, canonical)
    for index in range(config["num_hidden_layers"]):
        layer, block = f"encoder.layer.{index}", f"block_{index}"
        _put(
            canonical,
            f"{block}/spatial_norm",
            _norm(weights, f"{layer}.layernorm_before"),
            ("gamma", "beta"),
        )
        parts = [
            _linear(weights, f"{layer}.attention.attention.{part}")
            for part in ("query", "key", "value")
        ]
        qkv_kernel = np.concatenate([kernel for kernel, _ in parts], axis=1)
        qkv_bias = np.concatenate([bias for _, bias in parts], axis=0)
        _put(canonical, f"{block}/spatial_attention/qkv", (qkv_kernel, qkv_bias))
        _put(
            canonical,
            f"{block}/spatial_attention/proj",
            _linear(weights, f"{layer}.attention.output.dense"),
        )
        _hf_mlp(weights, layer, block, canonical)
    _put(canonical, "final_norm", _norm(weights, "layernorm"), ("gamma", "beta"))
    return canonical


def canonical_from_vit_npz(arrays):
    """Canonical weights and sizes of an original ViT release `.npz` (google-research layout)."""
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
        kernels = [
            arrays[f"{attention}/{part}/kernel"].reshape(width, width)
            for part in ("query", "key", "value")
        ]
        biases = [
            arrays[f"{attention}/{part}/bias"].reshape(width) for part in ("query", "key", "value")
        ]
        canonical[f"{block}/spatial_attention/qkv/kernel"] = np.concatenate(kernels, axis=1)
        canonical[f"{block}/spatial_attention/qkv/bias"] = np.concatenate(biases)
        canonical[f"{block}/spatial_attention/proj/kernel"] = arrays[
            f"{attention}/out/kernel"
        ].reshape(width, width)
        canonical[f"{block}/spatial_attention/proj/bias"] = arrays[f"{attention}/out/bias"]
        canonical[f"{block}/mlp_norm/gamma"] = arrays[f"{source}/LayerNorm_2/scale"]
        canonical[f"{block}/mlp_norm/beta"] = arrays[f"{source}/LayerNorm_2/bias"]
        for dense in (0, 1):
            canonical[f"{block}/mlp_dense_{dense + 1}/kernel"] = arrays[
                f"{source}/MlpBlock_3/Dense_{dense}/kernel"
            ]
            canonical[f"{block}/mlp_dense_{dense + 1}/bias"] = arrays[
                f"{source}/MlpBlock_3/Dense_{dense}/bias"
            ]
    sizes = {
        "hidden_size": width,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "mlp_dim": canonical["block_0/mlp_dense_1/kernel"].shape[1],
        "patch_size": canonical["patch/kernel"].shape[0],
    }
    return {name: np.asarray(value, np.float32) for name, value in canonical.items()}, sizes


def inflate_image_weights(canonical, attention_type):
    """Video weights from image weights, the reference way: each block's spatial attention and its
    LayerNorm are copied into the temporal ones, `temporal_fc` and the time embedding stay zero, so
    at init the video model equals the image model frame by frame."""
    canonical = dict(canonical)
    for name in list(canonical):
        block, _, rest = name.partition("/")
        if not block.startswith("block_"):
            continue
        if attention_type == "divided_space_time" and rest.startswith("spatial_"):
            canonical[f"{block}/temporal_{rest[len('spatial_') :]}"] = canonical[name].copy()
        elif attention_type == "joint_space_time" and rest.startswith("spatial_"):
            canonical[f"{block}/space_time_{rest[len('spatial_') :]}"] = canonical.pop(name)
    return canonical


def resize_position_embedding(pos, grid_size):
    """`[1, 1 + g*g, D]` position embedding resized to a `grid_size` grid by 2-D bilinear."""
    old_grid = int(round((pos.shape[1] - 1) ** 0.5))
    if old_grid**2 != pos.shape[1] - 1:
        raise CheckpointMismatchError(f"position embedding {pos.shape} is not a square grid + CLS")
    if old_grid == grid_size:
        return pos
    grid = pos[:, 1:].reshape(1, old_grid, old_grid, -1)
    grid = tf.image.resize(grid, (grid_size, grid_size), method="bilinear").numpy()
    return np.concatenate([pos[:, :1], grid.reshape(1, grid_size * grid_size, -1)], axis=1)


def _backbone_variables(backbone):
    """`{canonical name: keras.Variable}` of a built backbone."""
    embedding = backbone.patch_embedding
    variables = {
        "cls": embedding.cls_token,
        "pos": embedding.position_embedding,
        "patch/kernel": embedding.projection.kernel,
        "patch/bias": embedding.projection.bias,
        "final_norm/gamma": backbone.final_norm.gamma,
        "final_norm/beta": backbone.final_norm.beta,
    }
    if embedding.time_embedding is not None:
        variables["time"] = embedding.time_embedding
    for index, block in enumerate(backbone.blocks):
        prefix = f"{block.name}/"
        for variable in block.weights:
            path = variable.path
            variables[f"block_{index}/" + path[path.index(prefix) + len(prefix) :]] = variable
    return variables


def assign_backbone_weights(backbone, canonical, allow_missing=("time",)):
    """Assigns canonical weights to a built backbone; every shape is checked.

    Model parameters absent from `canonical` raise, except those named in `allow_missing`, which
    keep their initial values (the zero-initialised time embedding and `temporal_fc` of a
    video model made from an image checkpoint).
    """
    if not backbone.built:
        backbone.build()
    variables = _backbone_variables(backbone)
    unused = sorted(set(canonical) - set(variables))
    if unused:
        raise CheckpointMismatchError(f"checkpoint parameters with no place in the model: {unused}")
    for name, variable in variables.items():
        if name not in canonical:
            if any(name == allowed or name.startswith(f"{allowed}") for allowed in allow_missing):
                continue
            raise CheckpointMismatchError(
                f"model parameter {name!r} {tuple(variable.shape)} is not in the checkpoint"
            )
        value = canonical[name]
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointMismatchError(
                f"parameter {name!r}: checkpoint shape {tuple(value.shape)} does not fit the "
                f"model's shape {tuple(variable.shape)}"
            )
        variable.assign(value)
    return backbone


def _pixel_stats(preprocessor, default_mean, default_std):
    if preprocessor and "image_mean" in preprocessor and "image_std" in preprocessor:
        return tuple(preprocessor["image_mean"]), tuple(preprocessor["image_std"])
    return default_mean, default_std


def cover_from_hf_timesformer(checkpoint_dir, head_name="classifier", dtype=None):
    """A `CoVeRModel` equal to an HF TimeSformer checkpoint, its classifier as head `head_name`."""
    config, weights, preprocessor = read_hf_checkpoint(checkpoint_dir)
    if config.get("model_type") != "timesformer":
        raise ValueError(
            f"{checkpoint_dir}: model_type {config.get('model_type')!r} is not 'timesformer'"
        )
    mean, std = _pixel_stats(preprocessor, (0.45,) * 3, (0.225,) * 3)
    backbone = TimeSformerBackbone(
        hidden_size=config["hidden_size"],
        num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        mlp_dim=config["intermediate_size"],
        patch_size=config["patch_size"],
        num_frames=config["num_frames"],
        image_size=config["image_size"],
        attention_type=config.get("attention_type", "divided_space_time"),
        layer_norm_epsilon=config.get("layer_norm_eps", 1e-6),
        qkv_bias=config.get("qkv_bias", True),
        pixel_mean=mean,
        pixel_std=std,
        dtype=dtype,
    )
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act {config['hidden_act']!r} is not supported (only 'gelu')")
    assign_backbone_weights(
        backbone, canonical_from_hf_timesformer(config, weights), allow_missing=()
    )
    if "classifier.weight" not in weights:
        raise CheckpointMismatchError(
            f"{checkpoint_dir} has no classifier: convert a *ForVideoClassification checkpoint"
        )
    kernel, bias = _linear(weights, "classifier")
    model = CoVeRModel(backbone, {head_name: kernel.shape[1]}, dtype=dtype)
    model.build()
    model.heads[head_name].logits.kernel.assign(kernel)
    model.heads[head_name].logits.bias.assign(bias)
    return model


def cover_from_image_checkpoint(
    checkpoint,
    heads,
    num_frames=8,
    image_size=None,
    attention_type="divided_space_time",
    dtype=None,
    **backbone_kwargs,
):
    """A `CoVeRModel` whose TimeSformer is initialised from an image ViT, the reference way.

    Args:
        checkpoint: an HF ViT `save_pretrained` directory or an original ViT release `.npz`.
        heads: `{dataset_name: num_classes}` for the new (randomly initialised) heads.
        num_frames: int, clip length of the time embedding (zero-initialised). Default 8.
        image_size: int or None, frame side; the position embedding is resized by 2-D bilinear
            interpolation when it differs from the checkpoint's. Default: the checkpoint's.
        attention_type: the backbone's attention type.
        backbone_kwargs: other `TimeSformerBackbone` arguments (drop_path_rate, ...).
    """
    path = pathlib.Path(checkpoint)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            canonical, sizes = canonical_from_vit_npz(dict(arrays))
        grid = int(round((canonical["pos"].shape[1] - 1) ** 0.5))
        source_image_size = grid * sizes["patch_size"]
        epsilon, qkv_bias = 1e-6, True
        mean, std = VIT_PIXEL_MEAN, VIT_PIXEL_STD
    else:
        config, weights, preprocessor = read_hf_checkpoint(path)
        if config.get("model_type") != "vit":
            raise ValueError(f"{checkpoint}: model_type {config.get('model_type')!r} is not 'vit'")
        canonical = canonical_from_hf_vit(config, weights)
        sizes = {
            "hidden_size": config["hidden_size"],
            "num_layers": config["num_hidden_layers"],
            "num_heads": config["num_attention_heads"],
            "mlp_dim": config["intermediate_size"],
            "patch_size": config["patch_size"],
        }
        source_image_size = config["image_size"]
        epsilon, qkv_bias = config.get("layer_norm_eps", 1e-12), config.get("qkv_bias", True)
        mean, std = _pixel_stats(preprocessor, VIT_PIXEL_MEAN, VIT_PIXEL_STD)
    image_size = image_size or source_image_size
    backbone_kwargs.setdefault("layer_norm_epsilon", epsilon)
    backbone_kwargs.setdefault("qkv_bias", qkv_bias)
    backbone_kwargs.setdefault("pixel_mean", mean)
    backbone_kwargs.setdefault("pixel_std", std)
    backbone = TimeSformerBackbone(
        **sizes,
        num_frames=num_frames,
        image_size=image_size,
        attention_type=attention_type,
        dtype=dtype,
        **backbone_kwargs,
    )
    canonical["pos"] = resize_position_embedding(
        canonical["pos"], image_size // sizes["patch_size"]
    )
    canonical = inflate_image_weights(canonical, attention_type)
    assign_backbone_weights(backbone, canonical, allow_missing=("time", "block_"))
    _check_image_init_complete(backbone, canonical)
    model = CoVeRModel(backbone, heads, dtype=dtype)
    model.build()
    return model


def _check_image_init_complete(backbone, canonical):
    """Only `temporal_fc` and the time embedding may be left at their (zero) initial values."""
    missing = [
        name
        for name in _backbone_variables(backbone)
        if name not in canonical and name != "time" and "/temporal_fc/" not in name
    ]
    if missing:
        raise CheckpointMismatchError(f"image checkpoint leaves model parameters unset: {missing}")


def resize_time_embedding(time, num_frames):
    """`[1, T0, D]` time embedding resized to `num_frames` steps by linear interpolation."""
    if time.shape[1] == num_frames:
        return time
    resized = tf.image.resize(time[:, :, None, :], (num_frames, 1), method="bilinear").numpy()
    return resized[:, :, 0, :]


def load_backbone_from_model(model, source, heads=True):
    """Copies a CoVeR `source` model's backbone into `model` (embeddings resized to `model`'s
    image size and clip length), and with `heads` the heads whose name and class count match;
    returns the names of the heads loaded."""
    canonical = {
        name: variable.numpy() for name, variable in _backbone_variables(source.backbone).items()
    }
    backbone = model.backbone
    canonical["pos"] = resize_position_embedding(
        canonical["pos"], backbone.image_size // backbone.patch_size
    )
    if "time" in canonical and backbone.patch_embedding.time_embedding is not None:
        canonical["time"] = resize_time_embedding(canonical["time"], backbone.num_frames)
    assign_backbone_weights(backbone, canonical, allow_missing=())
    loaded = []
    for name, head in model.heads.items():
        if heads and source.head_classes.get(name) == model.head_classes[name]:
            head.set_weights(source.heads[name].get_weights())
            loaded.append(name)
    return loaded
