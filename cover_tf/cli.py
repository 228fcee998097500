"""What every `python -m cover_tf.*` command shares.

- Quiet start-up: TensorFlow's C++ start-up lines (CUDA not found, oneDNN notices, ...) are shown
  only with `--verbose`. The level has to be set before TensorFlow loads, so `cover_tf/__init__.py`
  calls `quiet_tensorflow` when the package is imported by `python -m cover_tf.<command>`; a value
  the user set in `TF_CPP_MIN_LOG_LEVEL` is kept.
- One error style: `<command>: error: <one sentence>` on stderr and exit status 2; the traceback
  only with `--verbose`.
"""

import functools
import logging
import os
import sys
import traceback

LOG_LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"


class UserError(Exception):
    """A mistake in what the user asked for (a path, a flag, an input): one sentence, exit 2."""


def running_as_command(argv=None) -> bool:
    """Whether this process is `python -m cover_tf.<command>`: while Python locates the module
    of `-m` (importing its package on the way), `sys.argv[0]` is "-m"."""
    argv = sys.argv if argv is None else argv
    return argv[:1] == ["-m"]


def quiet_tensorflow(argv=None, environ=os.environ) -> bool:
    """Hide TensorFlow's C++ log lines below FATAL unless `--verbose` is in `argv` or the user set
    the level. Has an effect only before TensorFlow loads. True when this call set it."""
    argv = sys.argv if argv is None else argv
    if LOG_LEVEL_VAR in environ or "--verbose" in argv:
        return False
    environ[LOG_LEVEL_VAR] = "3"
    environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from cover_tf import tf_internals  # XLA's and absl's own lines ("Compiled cluster using XLA")

    tf_internals.quiet_absl(3)
    return True


def sentence(error: BaseException) -> str:
    """The first line of an error's message (its type where it has none)."""
    text = str(error).strip()
    if isinstance(error, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]
    if not text:
        return type(error).__name__
    return text.splitlines()[0]


def fail(prog: str, error, verbose: bool = False) -> int:
    """Print `<prog>: error: <sentence>` on stderr (the traceback first with `verbose`); 2."""
    if verbose and isinstance(error, BaseException):
        traceback.print_exception(error)
    message = sentence(error) if isinstance(error, BaseException) else str(error)
    known = isinstance(error, (UserError, OSError, ValueError, KeyError, str))
    hint = "" if known or verbose else " (--verbose shows the traceback)"
    print(f"{prog}: error: {message}{hint}", file=sys.stderr, flush=True)
    return 2


def show_details() -> None:
    """With `--verbose`: the package's INFO lines (e.g. which kernels fell back) on stderr."""
    logger = logging.getLogger("cover_tf")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)


def command(prog: str):
    """Decorate a command's `main(argv=None) -> int`: any exception it lets out becomes one line
    on stderr and exit status 2 (`fail`), Ctrl-C exit 130; `--verbose` in argv shows tracebacks."""

    def wrap(main):
        @functools.wraps(main)
        def run(argv=None):
            args = sys.argv[1:] if argv is None else list(argv)
            verbose = "--verbose" in args
            if verbose:
                show_details()
            try:
                return main(argv)
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr, flush=True)
                return 130
            except SystemExit:
                raise
            except Exception as error:  # noqa: BLE001  (every error becomes one sentence)
                return fail(prog, error, verbose)

        return run

    return wrap
