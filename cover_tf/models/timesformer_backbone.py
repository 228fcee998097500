"""The TimeSformer video transformer backbone."""

import keras
import numpy as np
from keras import ops

from cover_tf.layers import PatchEmbedding, TimeSformerBlock, TokenLayerNorm, attention_spec
from cover_tf.models.variants import decode_variant

# Defaults of the TimeSformer reference checkpoints' preprocessing (values in [0, 1] scale).
DEFAULT_PIXEL_MEAN = (0.45, 0.45, 0.45)
DEFAULT_PIXEL_STD = (0.225, 0.225, 0.225)
# How the time embedding and the temporal_fc kernels start: "zeros" (the reference's, for
# image-pretrained inflation) or "normal" (truncated N(0, 0.02), for training from scratch).
TEMPORAL_INITS = ("zeros", "normal", "sinusoidal")


def sinusoidal_time_embedding(num_frames, hidden_size):
    """float32 `[1, T, D]`: the Transformer's sine / cosine table (amplitude 1) for T frames."""
    half = hidden_size // 2
    frequencies = 1.0 / (10000.0 ** (np.arange(half, dtype=np.float64) / max(half, 1)))
    angles = np.arange(num_frames, dtype=np.float64)[:, None] * frequencies[None]
    table = np.zeros((num_frames, hidden_size))
    table[:, 0 : 2 * half : 2] = np.sin(angles)
    table[:, 1 : 2 * half : 2] = np.cos(angles)
    return table[None].astype("float32")


@keras.saving.register_keras_serializable(package="cover_tf")
class TimeSformerBackbone(keras.Model):
    """TimeSformer (Bertasius et al., "Is Space-Time Attention All You Need for Video
    Understanding?", 2021) mapping normalized frames to a pooled CLS feature.

    Patch embedding, CLS token, spatial position and time embeddings, `num_layers` blocks of the
    chosen attention type with stochastic depth growing linearly from 0 to `drop_path_rate`,
    final LayerNorm on the CLS token (frame CLS tokens averaged first for `space_only`, as the
    original implementation does). T and the patch grid are read from the input, so one set of
    weights serves 1-frame images and clips of any length and resolution.

    Args:
        variant: str or None, a ViT size such as `"B/16"` (see `decode_variant`); explicit
            arguments below override it. Default None (then `hidden_size`, `num_layers` and
            `num_heads` are required).
        hidden_size, num_layers, num_heads, mlp_dim, patch_size: ints, the transformer's sizes
            (`mlp_dim` defaults to 4 x `hidden_size`, `patch_size` to 16).
        num_frames: int, clip length the time embedding is learned for. Default 8.
        image_size: int, frame side the position embedding is learned for. Default 224.
        attention_type: one of `ATTENTION_TYPES` (`cover_tf.layers`): `"divided_space_time"`
            (default), `"joint_space_time"`, `"space_only"`.
        dropout_rate, attention_dropout_rate, drop_path_rate: floats, regularisation. Default 0.
        layer_norm_epsilon: float. Default 1e-6.
        qkv_bias: bool. Default True.
        temporal_on_single_frame: bool, run the temporal branch on 1-frame inputs (images).
            Default True, as the paper feeds images as 1-frame videos.
        pixel_mean, pixel_std: 3 floats each, the normalization the model expects of its input
            frames (values in [0, 1] scale). The data pipeline and the export signatures apply
            them; the model itself consumes normalized frames.
        remat: bool, rematerialise every block in training (gradient checkpointing: a block's
            activations are recomputed in the backward pass instead of kept), for long clips
            and large batches; see README "Speed" for its memory and time cost. Drop path
            masks are replayed exactly; dropout layers are not, so it requires `dropout_rate`
            and `attention_dropout_rate` of 0. Default False.
        temporal_init: "zeros" (default, the reference's: the time embedding and every
            `temporal_fc` kernel start at zero, so an inflated image model starts as the image
            model) or "normal" (truncated N(0, 0.02), for a model trained from scratch).
        tubelet_size: int, frames each patch token sees (`PatchEmbedding`): 1 (default) is
            TimeSformer's frame-wise embedding; k > 1 embeds a window of k frames per token
            (time stride 1, edge frames repeated, in difference form), which gives the tokens a
            motion cue before any attention. Image checkpoints fill the kernel's central frame slice.
        tubelet_stride: int, frames between consecutive tokens' windows along time
            (`PatchEmbedding`): 1 (default) keeps a token per frame; s > 1 embeds every s-th
            frame's window, ceil(T / s) tokens along time.

    Input: float frames `[B, T, H, W, 3]`, normalized. Output: pooled features `[B, hidden_size]`.
    """

    def __init__(
        self,
        variant=None,
        hidden_size=None,
        num_layers=None,
        num_heads=None,
        mlp_dim=None,
        patch_size=None,
        num_frames=8,
        image_size=224,
        attention_type="divided_space_time",
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        drop_path_rate=0.0,
        layer_norm_epsilon=1e-6,
        qkv_bias=True,
        temporal_on_single_frame=True,
        pixel_mean=DEFAULT_PIXEL_MEAN,
        pixel_std=DEFAULT_PIXEL_STD,
        remat=False,
        temporal_init="zeros",
        tubelet_size=1,
        tubelet_stride=1,
        **kwargs,
    ):
        kwargs.setdefault("name", "timesformer")
        super().__init__(**kwargs)
        sizes = decode_variant(variant) if variant is not None else {}
        explicit = {
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "num_heads": num_heads,
            "mlp_dim": mlp_dim,
            "patch_size": patch_size,
        }
        sizes.update({key: value for key, value in explicit.items() if value is not None})
        sizes.setdefault("patch_size", 16)
        missing = [key for key in ("hidden_size", "num_layers", "num_heads") if key not in sizes]
        if missing:
            raise ValueError(f"Give a variant (e.g. 'B/16') or the sizes {missing}")
        sizes.setdefault("mlp_dim", 4 * sizes["hidden_size"])
        spec = attention_spec(attention_type)
        if len(pixel_mean) != 3 or len(pixel_std) != 3:
            raise ValueError(
                f"pixel_mean and pixel_std need 3 values each, got {pixel_mean!r}, {pixel_std!r}"
            )
        if temporal_init not in TEMPORAL_INITS:
            raise ValueError(
                f"temporal_init must be one of {TEMPORAL_INITS}, got {temporal_init!r}"
            )
        if remat and (dropout_rate or attention_dropout_rate):
            raise ValueError(
                "remat recomputes each block's forward pass and cannot replay dropout masks: "
                f"set dropout_rate ({dropout_rate}) and attention_dropout_rate "
                f"({attention_dropout_rate}) to 0, or remat to False"
            )
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate!r}")
        self.variant = variant
        self.hidden_size = sizes["hidden_size"]
        self.num_layers = sizes["num_layers"]
        self.num_heads = sizes["num_heads"]
        self.mlp_dim = sizes["mlp_dim"]
        self.patch_size = sizes["patch_size"]
        self.num_frames = num_frames
        self.image_size = image_size
        self.attention_type = attention_type
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.qkv_bias = qkv_bias
        self.temporal_on_single_frame = temporal_on_single_frame
        self.pixel_mean = tuple(float(value) for value in pixel_mean)
        self.pixel_std = tuple(float(value) for value in pixel_std)
        self.remat = bool(remat)
        self.temporal_init = temporal_init
        self.tubelet_size = tubelet_size
        self.tubelet_stride = tubelet_stride

        self.patch_embedding = PatchEmbedding(
            self.hidden_size,
            self.patch_size,
            image_size,
            num_frames,
            use_time_embedding=spec.time_embedding,
            dropout_rate=dropout_rate,
            tubelet_size=tubelet_size,
            tubelet_stride=tubelet_stride,
            dtype=self.dtype_policy,
            name="patch_embedding",
        )
        self.blocks = [
            TimeSformerBlock(
                self.hidden_size,
                self.num_heads,
                self.mlp_dim,
                attention_type=attention_type,
                drop_path_rate=self._block_drop_path_rate(index),
                dropout_rate=dropout_rate,
                attention_dropout_rate=attention_dropout_rate,
                layer_norm_epsilon=layer_norm_epsilon,
                qkv_bias=qkv_bias,
                temporal_on_single_frame=temporal_on_single_frame,
                dtype=self.dtype_policy,
                name=f"block_{index}",
            )
            for index in range(self.num_layers)
        ]
        self.final_norm = TokenLayerNorm(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="final_norm"
        )

    def specialises_one_frame(self, training):
        """Whether an input with T == 1 in its static shape (an image batch) runs a cheaper graph
        than the same input with T unknown (`TimeSformerBlock.specialises_one_frame`); the
        trainer then runs a mixed stream's one-frame batches on their own trace
        (cover_tf/training/trainer.py)."""
        return any(block.specialises_one_frame(training) for block in self.blocks)

    def _block_drop_path_rate(self, index):
        if self.num_layers == 1:
            return 0.0
        return self.drop_path_rate * index / (self.num_layers - 1)

    def build(self, input_shape=(None, None, None, None, 3)):
        self.patch_embedding.build(input_shape)
        token_shapes = ((None, 1, self.hidden_size), (None, None, None, self.hidden_size))
        for block in self.blocks:
            block.build(token_shapes)
        self.final_norm.build((None, self.hidden_size))
        if self.temporal_init != "zeros":
            self._init_temporal(self.temporal_init)
        self.built = True

    def _init_temporal(self, kind):
        """Draws the time embedding and every `temporal_fc` kernel from N(0, 0.02) (truncated).

        The reference starts them at zero so that an image-pretrained model inflated to video
        starts as the image model; a model trained from scratch learns time faster without it.
        """
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        blocks = [block for block in self.blocks if hasattr(block, "temporal_fc")]
        variables = [block.temporal_fc.kernel for block in blocks]
        time_embedding = self.patch_embedding.time_embedding
        if time_embedding is not None and kind == "normal":
            variables.append(time_embedding)
        for variable in variables:
            variable.assign(init(variable.shape, dtype=variable.dtype))
        if time_embedding is not None and kind == "sinusoidal":
            steps = self.patch_embedding.time_steps
            time_embedding.assign(sinusoidal_time_embedding(steps, self.hidden_size))

    def call(self, frames, training=None):
        cls_tokens, patch_tokens = self.patch_embedding(frames, training=training)
        if attention_spec(self.attention_type).frame_cls_tokens:
            # Every frame keeps its own CLS token: [B, T, D].
            cls_tokens = ops.broadcast_to(
                cls_tokens,
                (ops.shape(patch_tokens)[0], ops.shape(patch_tokens)[1], self.hidden_size),
            )
        for block in self.blocks:
            # Drop path masks come from a seed drawn here, outside the block, so that a
            # rematerialised block's recomputation draws the same masks as its forward pass.
            generator = block.drop_path.seed_generator
            seed = generator.next() if training and generator is not None else None
            if self.remat and training:
                cls_tokens, patch_tokens = self._rematerialized(
                    block, cls_tokens, patch_tokens, seed
                )
            else:
                cls_tokens, patch_tokens = block(
                    (cls_tokens, patch_tokens), training=training, seed=seed
                )
        return self.final_norm(ops.mean(cls_tokens, axis=1))

    @staticmethod
    def _rematerialized(block, cls_tokens, patch_tokens, seed):
        """`block` in training, its activations recomputed in the backward pass (`keras.remat`).

        The seed is captured, not an argument: it is not differentiable, and the recomputation
        must see the same value."""

        def run(cls_tokens, patch_tokens):
            return block((cls_tokens, patch_tokens), training=True, seed=seed)

        return keras.remat(run)(cls_tokens, patch_tokens)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_size)

    def get_config(self):
        return {
            "name": self.name,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "trainable": self.trainable,
            "variant": self.variant,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "patch_size": self.patch_size,
            "num_frames": self.num_frames,
            "image_size": self.image_size,
            "attention_type": self.attention_type,
            "dropout_rate": self.dropout_rate,
            "attention_dropout_rate": self.attention_dropout_rate,
            "drop_path_rate": self.drop_path_rate,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "qkv_bias": self.qkv_bias,
            "temporal_on_single_frame": self.temporal_on_single_frame,
            "pixel_mean": list(self.pixel_mean),
            "pixel_std": list(self.pixel_std),
            "remat": self.remat,
            "temporal_init": self.temporal_init,
            "tubelet_size": self.tubelet_size,
            "tubelet_stride": self.tubelet_stride,
        }
