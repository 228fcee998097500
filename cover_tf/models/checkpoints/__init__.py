"""Import of pre-trained weights, one module per source (read without pickle):

- `hf_timesformer`: HF TimeSformer video checkpoints, reproduced exactly with their classifier;
- `hf_vit`: HF ViT image checkpoints; `vit_npz`: original ViT release `.npz` image checkpoints;
  both inflated into a video model by the shared `inflation` step.

Every source is mapped onto one canonical layout (`weights`), assigned with every shape checked.
"""

import pathlib

from cover_tf.models.checkpoints.hf_format import read_hf_checkpoint
from cover_tf.models.checkpoints.hf_timesformer import (
    canonical_from_hf_timesformer,
    cover_from_hf_timesformer,
)
from cover_tf.models.checkpoints.hf_vit import canonical_from_hf_vit, read_hf_vit
from cover_tf.models.checkpoints.inflation import (
    ImageWeights,
    cover_from_image_weights,
    inflate_image_weights,
)
from cover_tf.models.checkpoints.vit_npz import canonical_from_vit_npz, read_vit_npz
from cover_tf.models.checkpoints.weights import (
    CheckpointMismatchError,
    assign_backbone_weights,
    load_backbone_from_model,
    resize_position_embedding,
    resize_time_embedding,
)


def cover_from_image_checkpoint(checkpoint, heads, **kwargs):
    """A `CoVeRModel` initialised from an image ViT (`checkpoint`: an HF ViT `save_pretrained`
    directory or a ViT release `.npz`), with new `heads`; `kwargs` as `cover_from_image_weights`
    (num_frames, image_size, attention_type, dtype, backbone arguments)."""
    path = pathlib.Path(checkpoint)
    image = read_vit_npz(path) if path.suffix == ".npz" else read_hf_vit(path)
    return cover_from_image_weights(image, heads, **kwargs)


__all__ = [
    "CheckpointMismatchError",
    "ImageWeights",
    "assign_backbone_weights",
    "canonical_from_hf_timesformer",
    "canonical_from_hf_vit",
    "canonical_from_vit_npz",
    "cover_from_hf_timesformer",
    "cover_from_image_checkpoint",
    "cover_from_image_weights",
    "inflate_image_weights",
    "load_backbone_from_model",
    "read_hf_checkpoint",
    "read_hf_vit",
    "read_vit_npz",
    "resize_position_embedding",
    "resize_time_embedding",
]
