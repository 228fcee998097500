"""The one place cover_tf reads TensorFlow's private modules (`tensorflow.python.*`).

They have no public API and may change in any TensorFlow release without notice, so each use is
listed here and was checked on the versions in `CHECKED_VERSIONS`; `tests/test_cpu.py` fails on
any other TensorFlow version until these uses are checked again there and the version is added.
Nothing the model computes goes through this module: it only reports facts (the benchmarks'
`onednn` field).

- `onednn_enabled`: `tensorflow.python.util._pywrap_util_port.IsMklEnabled`.
"""

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
