"""Layers of the TimeSformer: patch embedding, attention, blocks, stochastic depth."""

from cover_tf.layers.drop_path import DropPath
from cover_tf.layers.multi_head_self_attention import MultiHeadSelfAttention
from cover_tf.layers.patch_embedding import PatchEmbedding
from cover_tf.layers.timesformer_block import (
    ATTENTION_SPECS,
    ATTENTION_TYPES,
    AttentionSpec,
    TimeSformerBlock,
    attention_spec,
)
from cover_tf.layers.token_layers import TokenDense, TokenLayerNorm

__all__ = [
    "ATTENTION_SPECS",
    "ATTENTION_TYPES",
    "AttentionSpec",
    "DropPath",
    "MultiHeadSelfAttention",
    "PatchEmbedding",
    "TimeSformerBlock",
    "TokenDense",
    "TokenLayerNorm",
    "attention_spec",
]
