"""Layers of the TimeSformer: patch embedding, attention, blocks, stochastic depth."""

from cover_tf.layers.drop_path import DropPath
from cover_tf.layers.multi_head_self_attention import MultiHeadSelfAttention
from cover_tf.layers.patch_embedding import PatchEmbedding
from cover_tf.layers.timesformer_block import ATTENTION_TYPES, TimeSformerBlock

__all__ = [
    "ATTENTION_TYPES",
    "DropPath",
    "MultiHeadSelfAttention",
    "PatchEmbedding",
    "TimeSformerBlock",
]
