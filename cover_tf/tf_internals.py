"""The one place cover_tf reads TensorFlow's private modules (`tensorflow.python.*`).

They have no public API and may change in any TensorFlow release without notice, so each use is
listed here and was checked on the versions in `CHECKED_VERSIONS`; `tests/test_cpu.py` fails on
any other TensorFlow version until these uses are checked again there and the version is added.
Nothing the model computes goes through this module: it only reports facts (the benchmarks'
`onednn` field).

- `onednn_enabled`: `tensorflow.python.util._pywrap_util_port.IsMklEnabled`.
- `quiet_absl`: absl's C++ `SetMinLogLevel` in `libtensorflow_framework.so.2` (XLA and absl log
  through absl directly, which `TF_CPP_MIN_LOG_LEVEL` does not reach); the symbol's name carries
  the absl release TensorFlow 2.20 links.
"""

import ctypes
import importlib.util
import os

CHECKED_VERSIONS = ("2.20",)  # major.minor: every 2.20.x patch release


def checked(version: str) -> bool:
    """Whether the TensorFlow `version` (e.g. "2.20.0") is one this module was checked on."""
    return ".".join(version.split(".")[:2]) in CHECKED_VERSIONS


def onednn_enabled() -> bool | None:
    """Whether the loaded TensorFlow runs its oneDNN kernels (None where TF cannot say)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


ABSL_SET_MIN_LOG_LEVEL = "_ZN4absl12lts_2025012714SetMinLogLevelENS0_18LogSeverityAtLeastE"


def quiet_absl(level: int) -> bool:
    """Set absl's minimum C++ log level (0 INFO .. 3 FATAL) in TensorFlow's framework library,
    before or after TensorFlow loads. False where the library or the symbol is not found."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return False
    folder = list(spec.submodule_search_locations)[0]
    try:
        library = ctypes.CDLL(os.path.join(folder, "libtensorflow_framework.so.2"))
        set_min_log_level = getattr(library, ABSL_SET_MIN_LOG_LEVEL)
    except (OSError, AttributeError):
        return False
    set_min_log_level.argtypes = [ctypes.c_int]
    set_min_log_level.restype = None
    set_min_log_level(level)
    return True
