"""The shared step of every image checkpoint source: image weights inflated into a video model.

The reference way (TimeSformer's and CoVeR's initialisation from an image ViT): the image
attention fills the attention type's `image_branch` and is copied into its `inflated_branches`
(divided space-time: spatial into temporal); `temporal_fc` and the time embedding stay zero, so
at init the video model equals the image model frame by frame. The position embedding is
resized by 2-D bilinear interpolation when the frame size differs from the checkpoint's.
"""

import dataclasses

from cover_tf.layers import attention_spec
from cover_tf.models.checkpoints.weights import (
    CheckpointMismatchError,
    assign_backbone_weights,
    backbone_variables,
    resize_position_embedding,
)
from cover_tf.models.cover_model import CoVeRModel
from cover_tf.models.timesformer_backbone import TimeSformerBackbone

VIT_PIXEL_MEAN = (0.5, 0.5, 0.5)
VIT_PIXEL_STD = (0.5, 0.5, 0.5)


@dataclasses.dataclass
class ImageWeights:
    """An image checkpoint read into the canonical layout (see `weights`).

    Args:
        canonical: `{name: np.ndarray}`, its attention as the `spatial` branch.
        sizes: `hidden_size`, `num_layers`, `num_heads`, `mlp_dim`, `patch_size`.
        image_size: int, the frame side its position embedding was learned for.
        layer_norm_epsilon, qkv_bias, pixel_mean, pixel_std: the checkpoint's settings.
    """

    canonical: dict
    sizes: dict
    image_size: int
    layer_norm_epsilon: float = 1e-6
    qkv_bias: bool = True
    pixel_mean: tuple = VIT_PIXEL_MEAN
    pixel_std: tuple = VIT_PIXEL_STD


def inflate_image_weights(canonical, attention_type):
    """Video weights of `attention_type` from image weights whose attention is `spatial_*`."""
    spec = attention_spec(attention_type)
    canonical = dict(canonical)
    for name in list(canonical):
        block, _, rest = name.partition("/")
        if not block.startswith("block_") or not rest.startswith("spatial_"):
            continue
        part = rest[len("spatial_") :]
        value = canonical.pop(name)
        canonical[f"{block}/{spec.image_branch}_{part}"] = value
        for branch in spec.inflated_branches:
            canonical[f"{block}/{branch}_{part}"] = value.copy()
    return canonical


def cover_from_image_weights(
    image,
    heads,
    num_frames=8,
    image_size=None,
    attention_type="divided_space_time",
    dtype=None,
    **backbone_kwargs,
):
    """A `CoVeRModel` whose TimeSformer is initialised from `ImageWeights`, with new heads.

    Args:
        image: `ImageWeights` of an image checkpoint.
        heads: `{dataset_name: num_classes}` for the new (randomly initialised) heads.
        num_frames: int, clip length of the time embedding (zero-initialised). Default 8.
        image_size: int or None, frame side. Default: the checkpoint's.
        attention_type: the backbone's attention type. Default `"divided_space_time"`.
        backbone_kwargs: other `TimeSformerBackbone` arguments (drop_path_rate, ...).
    """
    image_size = image_size or image.image_size
    backbone_kwargs.setdefault("layer_norm_epsilon", image.layer_norm_epsilon)
    backbone_kwargs.setdefault("qkv_bias", image.qkv_bias)
    backbone_kwargs.setdefault("pixel_mean", image.pixel_mean)
    backbone_kwargs.setdefault("pixel_std", image.pixel_std)
    backbone = TimeSformerBackbone(
        **image.sizes,
        num_frames=num_frames,
        image_size=image_size,
        attention_type=attention_type,
        dtype=dtype,
        **backbone_kwargs,
    )
    canonical = dict(image.canonical)
    canonical["pos"] = resize_position_embedding(
        canonical["pos"], image_size // image.sizes["patch_size"]
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
        for name in backbone_variables(backbone)
        if name not in canonical and name != "time" and "/temporal_fc/" not in name
    ]
    if missing:
        raise CheckpointMismatchError(f"image checkpoint leaves model parameters unset: {missing}")
