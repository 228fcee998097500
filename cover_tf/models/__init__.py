"""Models: the TimeSformer backbone, per-dataset heads, the CoVeR model, size variants."""

from cover_tf.models.classification_head import ClassificationHead
from cover_tf.models.cover_model import CoVeRModel, build_cover_model
from cover_tf.models.timesformer_backbone import TimeSformerBackbone
from cover_tf.models.variants import decode_variant

__all__ = [
    "ClassificationHead",
    "CoVeRModel",
    "TimeSformerBackbone",
    "build_cover_model",
    "decode_variant",
]
