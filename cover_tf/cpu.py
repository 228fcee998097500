"""What the host CPU offers, read without importing TensorFlow, and the one setting it decides.

TensorFlow's x86 Linux wheels turn their oneDNN kernels on by default only on CPUs with
neural-network instructions (AVX512-VNNI, AVX512-BF16, AVX-VNNI, AMX; TensorFlow 2.9's release
notes); on the others, AVX2-only EPYCs among them, matmuls run on Eigen. On an AVX2-only EPYC
(Zen 3, 2 cores, 2026-12-02) oneDNN's fp32 matmul ran at 98-140 GFLOP/s over the benchmark's
five sizes where Eigen's ran at 68-133 (three of five below 102), and the model ran 1.3-1.7x
faster with it at the benchmark's tiny and small configs (README, "Speed").
`TF_ENABLE_ONEDNN_OPTS` is read once, when TensorFlow loads, so the package sets it on import,
before its first TensorFlow import (`cover_tf/__init__.py`): a script that imports TensorFlow
before cover_tf keeps TensorFlow's own choice, and a value the user set is always kept
(`TF_ENABLE_ONEDNN_OPTS=0` turns oneDNN off).
"""

import os
import sys

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512/AMX; aarch64 "bf16"
ONEDNN_VAR = "TF_ENABLE_ONEDNN_OPTS"


def cpu_flags(path="/proc/cpuinfo") -> tuple[str, set]:
    """(CPU model name, ISA flags) from /proc/cpuinfo; ("unknown", empty) where it is absent."""
    model, flags = "unknown", set()
    try:
        with open(path) as file:
            for line in file:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model") and model == "unknown":
                    model = value.strip()
                elif key in ("flags", "features"):
                    flags |= set(value.split())
    except OSError:
        pass
    return model, flags


def native_bf16(flags) -> bool:
    """True when the CPU multiplies bfloat16 natively; else TensorFlow emulates it."""
    return bool(set(NATIVE_BF16_FLAGS) & set(flags))


def onednn_setting(flags, environ) -> str | None:
    """The value for TF_ENABLE_ONEDNN_OPTS, or None to leave it as it is: "1" on an x86 CPU
    with AVX2 (oneDNN's fp32 kernels need no more) where the user has not set it."""
    if ONEDNN_VAR in environ or "avx2" not in flags:
        return None
    return "1"


def enable_onednn(environ=os.environ, modules=sys.modules, cpuinfo="/proc/cpuinfo") -> bool:
    """Set TF_ENABLE_ONEDNN_OPTS per `onednn_setting`, where TensorFlow has not loaded yet
    (after that the variable has no effect). True when this call set it."""
    if "tensorflow" in modules:
        return False
    value = onednn_setting(cpu_flags(cpuinfo)[1], environ)
    if value is not None:
        environ[ONEDNN_VAR] = value
    return value is not None


def onednn_enabled() -> bool | None:
    """Whether the loaded TensorFlow runs its oneDNN kernels (None where TF cannot say); a fact
    the benchmarks report, not one the layers choose kernels by."""
    from cover_tf import tf_internals

    return tf_internals.onednn_enabled()
