"""One TimeSformer encoder block: divided space-time, joint space-time or space-only attention.

This module owns the attention types: `ATTENTION_SPECS` says what the rest of the model (the
backbone, checkpoint conversion, config validation, the CLI) needs to know about each one, and
`TimeSformerBlock` computes it. Adding a type means a spec here and its branch in the block.
"""

import dataclasses

import keras
from keras import ops

from cover_tf.layers.backend_ops import dense, fold_in, split_leading
from cover_tf.layers.drop_path import DropPath
from cover_tf.layers.multi_head_self_attention import MultiHeadSelfAttention
from cover_tf.layers.token_layers import TokenDense, TokenLayerNorm


@dataclasses.dataclass(frozen=True)
class AttentionSpec:
    """What an attention type means outside the block.

    Args:
        branches: the block's attention branches in order; each is a LayerNorm
            `<branch>_norm` and an attention `<branch>_attention` (`temporal` also has the
            zero-initialised `temporal_fc`).
        image_branch: the branch an image ViT's (or HF TimeSformer's main) attention fills.
        inflated_branches: branches initialised as copies of `image_branch` from an image
            checkpoint (the reference inflation).
        time_embedding: whether the patch embedding adds a learned time embedding.
        frame_cls_tokens: whether every frame keeps its own CLS token (averaged at the end).
    """

    branches: tuple[str, ...]
    image_branch: str
    inflated_branches: tuple[str, ...] = ()
    time_embedding: bool = True
    frame_cls_tokens: bool = False


ATTENTION_SPECS = {
    "divided_space_time": AttentionSpec(
        branches=("temporal", "spatial"), image_branch="spatial", inflated_branches=("temporal",)
    ),
    "joint_space_time": AttentionSpec(branches=("space_time",), image_branch="space_time"),
    "space_only": AttentionSpec(
        branches=("spatial",), image_branch="spatial", time_embedding=False, frame_cls_tokens=True
    ),
}
ATTENTION_TYPES = tuple(ATTENTION_SPECS)


def attention_spec(attention_type):
    """The `AttentionSpec` of `attention_type`; ValueError naming the allowed types."""
    if attention_type not in ATTENTION_SPECS:
        raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}, got {attention_type!r}")
    return ATTENTION_SPECS[attention_type]


def split_cls(tokens, axis, num_cls=1):
    """`(tokens[..., :num_cls, ...], tokens[..., num_cls:, ...])` along `axis`, by a split, not
    slicing (see `backend_ops.split_leading`)."""
    return split_leading(tokens, num_cls, axis)


@keras.saving.register_keras_serializable(package="cover_tf")
class TimeSformerBlock(keras.layers.Layer):
    """A pre-LayerNorm transformer block over video tokens (Bertasius et al., 2021).

    Tokens travel as a pair `(cls_tokens, patch_tokens)`:
    `cls_tokens` is `[B, C, D]` (C = 1, or C = T per-frame CLS tokens for `space_only`) and
    `patch_tokens` is `[B, T, N, D]` (T frames, N patches per frame).

    - `divided_space_time`: temporal attention over the T tokens of each patch position (CLS
      excluded) -> `temporal_fc` (zero-initialised) -> residual; spatial attention over the N
      patches of each frame plus a copy of the CLS token per frame, the T CLS outputs averaged
      -> residual; MLP -> residual.
    - `joint_space_time`: one attention over CLS and all T*N patches; MLP.
    - `space_only`: each frame is an image with its own CLS token (ViT block per frame).

    Args:
        hidden_size: int, token width D.
        num_heads: int, attention heads; must divide `hidden_size`.
        mlp_dim: int, hidden width of the MLP.
        attention_type: one of `ATTENTION_TYPES`. Default `"divided_space_time"`.
        drop_path_rate: float, stochastic depth rate of this block. Default 0.
        dropout_rate: float, dropout after attention projections and MLP layers. Default 0.
        attention_dropout_rate: float, dropout on attention probabilities. Default 0.
        layer_norm_epsilon: float, LayerNorm epsilon. Default 1e-6.
        qkv_bias: bool, bias in the query/key/value projection. Default True.
        temporal_on_single_frame: bool, whether the temporal branch runs when T == 1 (it is then
            a per-token linear map, the identity while `temporal_fc` is zero). Default True.

    Input and output: `(cls_tokens [B, C, D], patch_tokens [B, T, N, D])`.
    """

    def __init__(
        self,
        hidden_size,
        num_heads,
        mlp_dim,
        attention_type="divided_space_time",
        drop_path_rate=0.0,
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        layer_norm_epsilon=1e-6,
        qkv_bias=True,
        temporal_on_single_frame=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        spec = attention_spec(attention_type)
        if hidden_size % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide hidden_size={hidden_size}")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.attention_type = attention_type
        self.drop_path_rate = drop_path_rate
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.qkv_bias = qkv_bias
        self.temporal_on_single_frame = temporal_on_single_frame

        def norm(name):
            return TokenLayerNorm(epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name=name)

        def attention(name):
            return MultiHeadSelfAttention(
                num_heads,
                qkv_bias=qkv_bias,
                attention_dropout_rate=attention_dropout_rate,
                dropout_rate=dropout_rate,
                dtype=self.dtype_policy,
                name=name,
            )

        dense_init = keras.initializers.TruncatedNormal(stddev=0.02)
        # Attribute names are the weights' names in a `.keras` file: keep them per branch.
        for branch in spec.branches:
            setattr(self, f"{branch}_norm", norm(f"{branch}_norm"))
            setattr(self, f"{branch}_attention", attention(f"{branch}_attention"))
            if branch == "temporal":
                self.temporal_fc = TokenDense(
                    hidden_size,
                    kernel_initializer="zeros",
                    dtype=self.dtype_policy,
                    name="temporal_fc",
                )
        self.drop_path = DropPath(drop_path_rate, dtype=self.dtype_policy, name="drop_path")
        self.mlp_norm = norm("mlp_norm")
        self.mlp_dense_1 = TokenDense(
            mlp_dim,
            activation="gelu",
            kernel_initializer=dense_init,
            dtype=self.dtype_policy,
            name="mlp_dense_1",
        )
        self.mlp_dense_2 = TokenDense(
            hidden_size, kernel_initializer=dense_init, dtype=self.dtype_policy, name="mlp_dense_2"
        )
        self.mlp_dropout = keras.layers.Dropout(
            dropout_rate, dtype=self.dtype_policy, name="mlp_dropout"
        )

    def build(self, input_shape):
        token_shape = (None, None, self.hidden_size)
        for branch in attention_spec(self.attention_type).branches:
            getattr(self, f"{branch}_norm").build(token_shape)
            getattr(self, f"{branch}_attention").build(token_shape)
            if branch == "temporal":
                self.temporal_fc.build(token_shape)
        self.mlp_norm.build(token_shape)
        self.mlp_dense_1.build(token_shape)
        self.mlp_dense_2.build((None, None, self.mlp_dim))

    def _mlp(self, tokens, training, seed):
        hidden = self.mlp_dense_1(self.mlp_norm(tokens))
        hidden = self.mlp_dropout(hidden, training=training)
        hidden = self.mlp_dropout(self.mlp_dense_2(hidden), training=training)
        return tokens + self.drop_path(hidden, training=training, seed=seed)

    def call(self, inputs, training=None, seed=None):
        """`inputs`: `(cls_tokens, patch_tokens)`; `seed`: optional int tensor `[2]` from which
        every drop path mask of the block is drawn statelessly (for recomputation)."""
        cls_tokens, patch_tokens = inputs

        def branch_seed(index):  # one independent stateless seed per residual branch
            if seed is None:
                return None
            return fold_in(seed, index)

        shape = ops.shape(patch_tokens)
        batch, frames, patches, width = shape[0], shape[1], shape[2], patch_tokens.shape[-1]

        if self.attention_type == "divided_space_time":
            if self.temporal_on_single_frame or patch_tokens.shape[1] != 1:
                patch_tokens = self._temporal(patch_tokens, training, branch_seed(0))
            # Spatial: each frame's N patches plus a copy of the CLS token; CLS outputs averaged.
            frame_cls = ops.broadcast_to(ops.expand_dims(cls_tokens, 2), (batch, frames, 1, width))
            tokens = ops.concatenate([frame_cls, patch_tokens], axis=2)
            tokens = ops.reshape(tokens, (batch * frames, patches + 1, width))
            residual = self.spatial_attention(self.spatial_norm(tokens), training=training)
            residual = ops.reshape(residual, (batch, frames, patches + 1, width))
            residual = self.drop_path(residual, training=training, seed=branch_seed(1))
            cls_residual, patch_residual = split_cls(residual, axis=2)
            cls_tokens = cls_tokens + ops.mean(ops.squeeze(cls_residual, 2), axis=1, keepdims=True)
            patch_tokens = patch_tokens + patch_residual
        elif self.attention_type == "joint_space_time":
            num_cls = ops.shape(cls_tokens)[1]
            tokens = ops.concatenate(
                [cls_tokens, ops.reshape(patch_tokens, (batch, frames * patches, width))], axis=1
            )
            residual = self.space_time_attention(self.space_time_norm(tokens), training=training)
            tokens = tokens + self.drop_path(residual, training=training, seed=branch_seed(1))
            cls_tokens, patch_part = split_cls(tokens, axis=1, num_cls=num_cls)
            patch_tokens = ops.reshape(patch_part, (batch, frames, patches, width))
        elif self.attention_type == "space_only":
            tokens = ops.concatenate([ops.expand_dims(cls_tokens, 2), patch_tokens], axis=2)
            tokens = ops.reshape(tokens, (batch * frames, patches + 1, width))
            residual = self.spatial_attention(self.spatial_norm(tokens), training=training)
            residual = ops.reshape(residual, (batch, frames, patches + 1, width))
            residual = self.drop_path(residual, training=training, seed=branch_seed(1))
            cls_residual, patch_residual = split_cls(residual, axis=2)
            cls_tokens = cls_tokens + ops.squeeze(cls_residual, 2)
            patch_tokens = patch_tokens + patch_residual
        else:
            raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}")

        return (
            self._mlp(cls_tokens, training, branch_seed(2)),
            self._mlp(patch_tokens, training, branch_seed(3)),
        )

    def _temporal(self, patch_tokens, training, seed=None):
        """The temporal branch with its residual: `[B, T, N, D]` -> `[B, T, N, D]`.

        On one frame (T == 1 in the static shape: an image) attention over a single key is a
        linear map, so the branch value -> output projection -> drop path -> `temporal_fc` after
        the LayerNorm is computed as one D x D matrix product of the tokens (the product of the
        three kernels, formed per step from the same variables, so gradients reach each of
        them): the same function, without query, key, softmax or transposes. Elsewhere (T > 1,
        T unknown until the graph runs, or dropout active in training) attention runs. A mixed
        stream's images reach this path through the trainer, which runs one-frame batches on
        their own trace (`cover_tf/training/trainer.py`); a `cond` on T here, inside the
        model's gradient, cost the video batches what it saved the images (README, "Speed").
        """
        if patch_tokens.shape[1] == 1 and self._temporal_is_linear_on_one_frame(training):
            normed = self.temporal_norm(patch_tokens)
            return patch_tokens + self._single_frame_residual(normed, training, seed)
        return patch_tokens + self._attention_residual(patch_tokens, training, seed)

    def _temporal_is_linear_on_one_frame(self, training):
        """Whether `_temporal` computes a one-frame input as one matrix product."""
        return self.temporal_fc.runs_own_kernel and self.temporal_attention.is_linear_on_one_token(
            training
        )

    def specialises_one_frame(self, training):
        """Whether this block runs a cheaper graph for an input with T == 1 in its static shape
        than for the same input with T unknown: divided attention whose temporal branch is then
        skipped (`temporal_on_single_frame` false) or one matrix product (`_temporal`)."""
        if self.attention_type != "divided_space_time":
            return False
        return not self.temporal_on_single_frame or self._temporal_is_linear_on_one_frame(training)

    def _attention_residual(self, patch_tokens, training, seed):
        """Temporal attention over the T tokens of each patch position (LayerNorm, attention,
        drop path, `temporal_fc`): the residual `[B, T, N, D]` of `[B, T, N, D]` tokens."""
        shape = ops.shape(patch_tokens)
        batch, frames, patches, width = shape[0], shape[1], shape[2], patch_tokens.shape[-1]
        tokens = ops.reshape(
            ops.transpose(patch_tokens, (0, 2, 1, 3)), (batch * patches, frames, width)
        )
        residual = self.temporal_attention(self.temporal_norm(tokens), training=training)
        residual = ops.reshape(residual, (batch, patches, frames, width))
        residual = self.temporal_fc(self.drop_path(residual, training=training, seed=seed))
        return ops.transpose(residual, (0, 2, 1, 3))

    def _single_frame_residual(self, normed, training, seed):
        """`_attention_residual` of `[B, 1, N, D]` tokens (given LayerNorm'd), as the linear
        map it is there."""
        kernel, bias = self.temporal_attention.single_key_map()
        fc_kernel = self.temporal_fc.kernel
        kernel = ops.cast(ops.matmul(kernel, fc_kernel), self.compute_dtype)
        bias = ops.cast(ops.matmul(bias, fc_kernel), self.compute_dtype)
        residual = dense(normed, kernel, bias)
        # The drop path sits between the projection and temporal_fc, whose bias it does not scale.
        residual = self.drop_path(residual, training=training, seed=seed)
        return residual + ops.cast(self.temporal_fc.bias, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_size": self.hidden_size,
                "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim,
                "attention_type": self.attention_type,
                "drop_path_rate": self.drop_path_rate,
                "dropout_rate": self.dropout_rate,
                "attention_dropout_rate": self.attention_dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "qkv_bias": self.qkv_bias,
                "temporal_on_single_frame": self.temporal_on_single_frame,
            }
        )
        return config
