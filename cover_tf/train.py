"""The main job: `python -m cover_tf.train --config configs/demo.yaml [--set KEY=VALUE ...]
[--workdir DIR] [--restart] [--allow-config-change] [--verbose]`.

Builds the strategy, the data (preparing the embedded synthetic datasets on first use), the model
(optionally from a converted checkpoint) and trains it with Keras `fit`; then evaluates every
dataset with its own head and writes `metrics.json` in the workdir. Running the same command again
after a crash resumes from the newest verified backup. A user's mistake (a bad config key or
builder, a workdir that is a file, read-only or in use by another job, a changed config, no usable
backup) ends in one line on stderr and exit status 2, before the workdir is written.
"""

import argparse
import json
import signal
import sys
import traceback

from cover_tf.config import ConfigError, load_config
from cover_tf.training import loop
from cover_tf.training.backup import BackupError
from cover_tf.training.config_change import SAFE_TO_CHANGE
from cover_tf.training.lock import WorkdirBusy
from cover_tf.training.preflight import WorkdirError

USER_ERRORS = (ConfigError, WorkdirError, WorkdirBusy, BackupError)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cover_tf.train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", required=True, help="experiment YAML (see configs/)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field"
    )
    parser.add_argument(
        "--workdir", default=None, help="default: runs/<config name>; any tf.io.gfile path"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="clear this workdir's backups and history and train from scratch",
    )
    parser.add_argument(
        "--allow-config-change",
        action="store_true",
        help=f"accept a changed config in the fields {', '.join(SAFE_TO_CHANGE)}",
    )
    parser.add_argument("--verbose", action="store_true", help="show tracebacks of errors")
    return parser.parse_args(argv)


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # unwinds: the workdir lock is released


def _fail(error, verbose) -> int:
    if verbose:
        traceback.print_exc()
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    print(f"train: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        config = load_config(args.config, args.set)
    except (ConfigError, FileNotFoundError) as error:
        return _fail(error, args.verbose)
    workdir = args.workdir or f"runs/{config.name}"
    try:
        metrics = loop.run(
            config, workdir, restart=args.restart, allow_config_change=args.allow_config_change
        )
    except USER_ERRORS as error:
        return _fail(error, args.verbose)
    print(json.dumps({"workdir": str(workdir), **metrics}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
