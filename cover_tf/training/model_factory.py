"""Building the CoVeR model from the model config, optionally from a converted checkpoint."""

import keras
from absl import logging

from cover_tf.models import build_cover_model
from cover_tf.models.checkpoints import load_backbone_from_model
from cover_tf.training.trainer import attach_trainer


def build_model(model_config, heads, dtype=None):
    """A built `CoVeRModel` for `{dataset_name: num_classes}` from a `ModelConfig`.

    With `model_config.init_checkpoint` (a `.keras` CoVeR model), the backbone weights are copied
    from it (position and time embeddings resized when the sizes differ), and, with
    `model_config.init_heads`, the heads whose name and class count match. The trainer
    workarounds are attached (`cover_tf.training.trainer`), so the model is ready for `fit`.
    """
    model = build_cover_model(
        heads,
        variant=model_config.variant,
        hidden_size=model_config.hidden_size,
        num_layers=model_config.num_layers,
        num_heads=model_config.num_heads,
        mlp_dim=model_config.mlp_dim,
        patch_size=model_config.patch_size,
        num_frames=model_config.num_frames,
        image_size=model_config.image_size,
        attention_type=model_config.attention_type,
        dropout_rate=model_config.dropout_rate,
        attention_dropout_rate=model_config.attention_dropout_rate,
        drop_path_rate=model_config.drop_path_rate,
        temporal_on_single_frame=model_config.temporal_on_single_frame,
        pixel_mean=model_config.pixel_mean,
        pixel_std=model_config.pixel_std,
        head_hidden_dim=model_config.head_hidden_dim,
        head_dropout_rate=model_config.head_dropout_rate,
        remat=model_config.remat,
        temporal_init=model_config.temporal_init,
        tubelet_size=model_config.tubelet_size,
        tubelet_stride=model_config.tubelet_stride,
        dtype=dtype,
    )
    if model_config.init_checkpoint:
        source = keras.saving.load_model(model_config.init_checkpoint, compile=False)
        loaded_heads = load_backbone_from_model(model, source, heads=model_config.init_heads)
        logging.info(
            "Initialised from %s (heads loaded: %s)", model_config.init_checkpoint, loaded_heads
        )
    return attach_trainer(model)
