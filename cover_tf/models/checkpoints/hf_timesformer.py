"""HF TimeSformer video checkpoints (`TimesformerForVideoClassification`) as a CoVeR model."""

from cover_tf.layers import attention_spec
from cover_tf.models.checkpoints import hf_format
from cover_tf.models.checkpoints.weights import CheckpointMismatchError, assign_backbone_weights
from cover_tf.models.cover_model import CoVeRModel
from cover_tf.models.timesformer_backbone import TimeSformerBackbone


def canonical_from_hf_timesformer(config, weights):
    """Canonical weights of an HF `TimesformerModel` / `TimesformerForVideoClassification`.

    Each HF layer's attention fills the attention type's `image_branch`; its temporal attention,
    norm and dense (divided space-time) fill the `temporal` branch.
    """
    weights = hf_format.strip_prefix(weights, ("timesformer.",))
    canonical = {}
    hf_format.embeddings(weights, canonical)
    if "embeddings.time_embeddings" in weights:
        canonical["time"] = weights["embeddings.time_embeddings"]
    spec = attention_spec(config.get("attention_type", "divided_space_time"))
    main = spec.image_branch
    for index in range(config["num_hidden_layers"]):
        layer, block = f"encoder.layer.{index}", f"block_{index}"
        hf_format.put_norm(canonical, f"{block}/{main}_norm", weights, f"{layer}.layernorm_before")
        for part, source in (
            ("qkv", "attention.attention.qkv"),
            ("proj", "attention.output.dense"),
        ):
            hf_format.put(
                canonical,
                f"{block}/{main}_attention/{part}",
                hf_format.linear(weights, f"{layer}.{source}"),
            )
        if "temporal" in spec.branches:
            hf_format.put_norm(
                canonical, f"{block}/temporal_norm", weights, f"{layer}.temporal_layernorm"
            )
            for part, source in (
                ("qkv", "temporal_attention.attention.qkv"),
                ("proj", "temporal_attention.output.dense"),
            ):
                hf_format.put(
                    canonical,
                    f"{block}/temporal_attention/{part}",
                    hf_format.linear(weights, f"{layer}.{source}"),
                )
            hf_format.put(
                canonical,
                f"{block}/temporal_fc",
                hf_format.linear(weights, f"{layer}.temporal_dense"),
            )
        hf_format.mlp(weights, layer, block, canonical)
    hf_format.put_norm(canonical, "final_norm", weights, "layernorm")
    return canonical


def cover_from_hf_timesformer(checkpoint_dir, head_name="classifier", dtype=None):
    """A `CoVeRModel` equal to an HF TimeSformer checkpoint, its classifier as head `head_name`."""
    config, weights, preprocessor = hf_format.read_hf_checkpoint(checkpoint_dir)
    if config.get("model_type") != "timesformer":
        raise ValueError(
            f"{checkpoint_dir}: model_type {config.get('model_type')!r} is not 'timesformer'"
        )
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act {config['hidden_act']!r} is not supported (only 'gelu')")
    mean, std = hf_format.pixel_stats(preprocessor, (0.45,) * 3, (0.225,) * 3)
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
    assign_backbone_weights(
        backbone, canonical_from_hf_timesformer(config, weights), allow_missing=()
    )
    if "classifier.weight" not in weights:
        raise CheckpointMismatchError(
            f"{checkpoint_dir} has no classifier: convert a *ForVideoClassification checkpoint"
        )
    kernel, bias = hf_format.linear(weights, "classifier")
    model = CoVeRModel(backbone, {head_name: kernel.shape[1]}, dtype=dtype)
    model.build()
    model.heads[head_name].logits.kernel.assign(kernel)
    model.heads[head_name].logits.bias.assign(bias)
    return model
