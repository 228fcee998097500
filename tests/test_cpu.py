"""`cover_tf.cpu`: importing cover_tf turns TensorFlow's oneDNN kernels on for x86 CPUs where
TensorFlow leaves them off (1.3-1.7x the model's speed on an AVX2-only EPYC), keeps a user's
own TF_ENABLE_ONEDNN_OPTS, and cannot act once TensorFlow has loaded; `cover_tf.tf_internals`,
the one reader of TensorFlow's private modules, was checked on the TensorFlow installed."""

import os
import subprocess
import sys

from cover_tf import tf_internals
from cover_tf.cpu import cpu_flags, enable_onednn, native_bf16, onednn_setting

AVX2_EPYC = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_onednn_goes_on_for_avx2_unless_the_user_chose():
    assert onednn_setting({"avx2", "fma"}, {}) == "1"
    assert onednn_setting({"avx2", "avx512f", "avx512_vnni"}, {}) == "1"
    assert onednn_setting({"avx2"}, {"TF_ENABLE_ONEDNN_OPTS": "0"}) is None
    assert onednn_setting({"asimd", "bf16"}, {}) is None  # aarch64: TF's own build decides
    assert onednn_setting(set(), {}) is None  # no /proc/cpuinfo


def test_enable_onednn_acts_only_before_tensorflow_loads(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(AVX2_EPYC)
    environ = {}
    assert enable_onednn(environ, modules={}, cpuinfo=str(cpuinfo))
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    environ = {}
    assert not enable_onednn(environ, modules={"tensorflow": object()}, cpuinfo=str(cpuinfo))
    assert environ == {}
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert not enable_onednn(environ, modules={}, cpuinfo=str(cpuinfo))
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0"}


def test_native_bf16_is_avx512_bf16_amx_or_arm_bf16(tmp_path):
    assert not native_bf16({"avx2", "avx512f"})
    assert native_bf16({"avx512_bf16"}) and native_bf16({"amx_bf16"})
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(GRAVITON3)
    assert native_bf16(cpu_flags(str(cpuinfo))[1])


def test_tensorflow_is_a_version_tf_internals_was_checked_on():
    """`cover_tf.tf_internals` reads TensorFlow's private modules, which any release may change:
    on a TensorFlow it was not checked on, this fails until its uses are checked there."""
    import tensorflow as tf

    assert tf_internals.checked(tf.__version__), (
        f"TensorFlow {tf.__version__} is not among the versions cover_tf/tf_internals.py was "
        f"checked on ({', '.join(v + '.x' for v in tf_internals.CHECKED_VERSIONS)}): check each "
        "private use it lists on this version, then add the version to CHECKED_VERSIONS"
    )
    assert tf_internals.onednn_enabled() in (True, False)
    checked = tf_internals.CHECKED_VERSIONS[0]
    assert tf_internals.checked(f"{checked}.7") and not tf_internals.checked(f"{checked}9.0")


def onednn_after_import(environ):
    code = "import cover_tf; from cover_tf.cpu import onednn_enabled; print(onednn_enabled())"
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_importing_cover_tf_turns_onednn_on_in_tensorflow_and_zero_keeps_it_off():
    environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if "avx2" in cpu_flags()[1]:  # elsewhere TF's own default stands
        assert onednn_after_import(environ) == "True"
    assert onednn_after_import({**environ, "TF_ENABLE_ONEDNN_OPTS": "0"}) == "False"
