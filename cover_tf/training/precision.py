"""The compute precision a run actually uses: `train.precision`, unless bfloat16 would be emulated.

On a CPU without native bfloat16 arithmetic (no AVX512-BF16, no AMX; e.g. AVX2-only EPYCs),
TensorFlow emulates bfloat16 matmuls and `mixed_bfloat16` trains slower than float32 (issue 11:
tiny config 16.6 vs 25.7 clips/s on an AVX2 EPYC) with no memory saving that matters on a host
with tens of GiB. There a CPU-only run trains in float32 and says so in the log; with a GPU or
TPU, or on a CPU with native bfloat16, the configured precision is used as is.
"""

import tensorflow as tf
from absl import logging

from cover_tf.cpu import NATIVE_BF16_FLAGS, cpu_flags, native_bf16


def effective_precision(requested: str, cpuinfo="/proc/cpuinfo") -> str:
    """`requested`, or "float32" for `mixed_bfloat16` on a CPU-only host without native bf16."""
    if requested != "mixed_bfloat16":
        return requested
    if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
        return requested
    model, flags = cpu_flags(cpuinfo)
    if not flags or native_bf16(flags):
        return requested  # native bf16, or a CPU this cannot read: keep what was asked
    logging.warning(
        "train.precision is mixed_bfloat16 but this CPU (%s) has no native bfloat16 arithmetic "
        "(none of %s): emulated bfloat16 trains slower than float32 here, so this run trains in "
        "float32",
        model,
        ", ".join(NATIVE_BF16_FLAGS),
    )
    return "float32"
