"""The CoVeR model: one TimeSformer backbone, one classification head per dataset."""

import re

import keras

from cover_tf.models.classification_head import ClassificationHead
from cover_tf.models.timesformer_backbone import TimeSformerBackbone

HEAD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@keras.saving.register_keras_serializable(package="cover_tf")
class CoVeRModel(keras.Model):
    """CoVeR (Zhang et al., "Co-training Transformer with Videos and Images Improves Action
    Recognition", 2021): a shared TimeSformer backbone with one classification head per dataset.

    A dataset's name is the key of its head, its output, its loss and metrics (`<name>/top1`) and
    its export signature. Images are 1-frame clips through the same backbone.

    Args:
        backbone: a `TimeSformerBackbone` (or its config dict).
        heads: dict `{dataset_name: num_classes}`; names are identifiers (letters, digits, `_`).
        head_hidden_dim: int or None, hidden width of every head. Default None (linear heads).
        head_dropout_rate: float, dropout before every head. Default 0.
        head_kernel_initializer: initializer of the heads' output layers. Default truncated
            normal 0.02 (`"zeros"` for zero-initialised heads).

    Input: normalized float frames `[B, T, H, W, 3]`. Output: `{dataset_name: logits [B, classes]}`
    (float32 logits).
    """

    def __init__(
        self,
        backbone,
        heads,
        head_hidden_dim=None,
        head_dropout_rate=0.0,
        head_kernel_initializer=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "cover")
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        if not isinstance(backbone, TimeSformerBackbone):
            raise ValueError(f"backbone must be a TimeSformerBackbone, got {type(backbone)}")
        if not heads:
            raise ValueError("heads must name at least one dataset: {dataset_name: num_classes}")
        for name, num_classes in heads.items():
            if not HEAD_NAME.match(name):
                raise ValueError(
                    f"head name {name!r} must start with a letter and hold only letters, digits "
                    "and '_' (it names the dataset's output, metrics and serving signature)"
                )
            if int(num_classes) < 1:
                raise ValueError(f"head {name!r} needs num_classes >= 1, got {num_classes!r}")
        self.backbone = backbone
        self.head_classes = {name: int(num_classes) for name, num_classes in sorted(heads.items())}
        self.head_hidden_dim = head_hidden_dim
        self.head_dropout_rate = head_dropout_rate
        self.head_kernel_initializer = head_kernel_initializer
        self.heads = {
            name: ClassificationHead(
                num_classes,
                hidden_dim=head_hidden_dim,
                dropout_rate=head_dropout_rate,
                kernel_initializer=head_kernel_initializer,
                dtype=self.dtype_policy,
                name=f"head_{name}",
            )
            for name, num_classes in self.head_classes.items()
        }

    @property
    def head_names(self):
        return tuple(self.head_classes)

    def build(self, input_shape=(None, None, None, None, 3)):
        if not self.backbone.built:
            self.backbone.build(input_shape)
        for head in self.heads.values():
            if not head.built:
                head.build((None, self.backbone.hidden_size))
        self.built = True

    def call(self, frames, training=None):
        features = self.backbone(frames, training=training)
        return {name: head(features, training=training) for name, head in self.heads.items()}

    def get_config(self):
        return {
            "name": self.name,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "heads": dict(self.head_classes),
            "head_hidden_dim": self.head_hidden_dim,
            "head_dropout_rate": self.head_dropout_rate,
            "head_kernel_initializer": self.head_kernel_initializer,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


def build_cover_model(
    heads, variant=None, head_hidden_dim=None, head_dropout_rate=0.0, **backbone_kwargs
):
    """A built `CoVeRModel` from a variant string (or sizes) and `{dataset_name: num_classes}`.

    `backbone_kwargs` are `TimeSformerBackbone` arguments (`num_frames`, `image_size`,
    `attention_type`, `drop_path_rate`, ...), e.g.
    `build_cover_model({"kinetics400": 400, "ssv2": 174}, variant="B/16", num_frames=8)`.
    """
    dtype = backbone_kwargs.pop("dtype", None)
    backbone = TimeSformerBackbone(variant=variant, dtype=dtype, **backbone_kwargs)
    model = CoVeRModel(
        backbone,
        heads,
        head_hidden_dim=head_hidden_dim,
        head_dropout_rate=head_dropout_rate,
        dtype=dtype,
    )
    model.build()
    return model
