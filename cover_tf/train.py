"""The main job: `python -m cover_tf.train --config configs/demo.yaml [--set KEY=VALUE ...]
[--workdir DIR] [--restart] [--allow-config-change] [--verbose]`.

Builds the strategy, the data (preparing the embedded synthetic datasets on first use), the model
(optionally from a converted checkpoint) and trains it with Keras `fit`; then evaluates every
dataset with its own head and writes `metrics.json` in the workdir. Running the same command again
after a crash resumes from the newest verified backup. A user's mistake (a bad config key or
builder, a dataset whose files were never prepared, an init checkpoint that is no cover_tf model,
a workdir that is a file, read-only or in use by another job, a changed config, no usable backup)
ends in `train: error: <one sentence>` on stderr and exit status 2, before the workdir is written
(--verbose: the traceback too).
"""

import argparse
import contextlib
import json
import pathlib
import signal
import sys

from absl import logging as absl_logging

from cover_tf import cli
from cover_tf.config import ConfigError, load_config
from cover_tf.export import check_model_file
from cover_tf.training import loop, preflight
from cover_tf.training.backup import BackupError
from cover_tf.training.config_change import SAFE_TO_CHANGE
from cover_tf.training.lock import WorkdirBusy

PROG = "train"
USER_ERRORS = (ConfigError, preflight.WorkdirError, WorkdirBusy, BackupError)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cover_tf.train", description=__doc__.split("\n")[0]
    )
    # Usage mistakes in the commands' one style: `train: error: <sentence>`, exit 2.
    parser.error = lambda message: sys.exit(cli.fail(PROG, cli.UserError(message)))
    parser.add_argument("--config", required=True, help="experiment YAML (see configs/)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (datasets.NAME=null drops a dataset)",
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


@contextlib.contextmanager
def _without_absl_warnings():
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(verbosity)


def check_inputs(config) -> None:
    """What the run reads before it writes anything, as one sentence each (`cli.UserError`):
    every dataset a build command must prepare (a user's own folders, manual downloads) is
    prepared, and `model.init_checkpoint` is a CoVeR model Keras loads in safe mode."""
    with _without_absl_warnings():  # TFDS warns of each unprepared folder; the sentence says more
        builders = preflight.lookup_builders(config)
        unprepared = [
            cfg
            for cfg in config.datasets
            if builders[cfg.name].MANUAL_DOWNLOAD_INSTRUCTIONS
            and not builders[cfg.name].is_prepared()
        ]
    if unprepared:
        cfg = unprepared[0]
        where = f" --data_dir {cfg.data_dir}" if cfg.data_dir else ""
        raise cli.UserError(
            f"datasets.{cfg.name}: {cfg.builder} is not prepared in "
            f"{builders[cfg.name].data_dir}; prepare it first: python -m cover_tf.builders.build "
            f"{cfg.builder} --manual_dir <its files>{where}"
        )
    if config.model.init_checkpoint:
        check_model_file(config.model.init_checkpoint, "model.init_checkpoint")


@cli.command(PROG)
def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if not pathlib.Path(args.config).is_file():
        raise cli.UserError(f"--config {args.config!r} is not a file")
    try:
        config = load_config(args.config, args.set)
        check_inputs(config)
        workdir = args.workdir or f"runs/{config.name}"
        metrics = loop.run(
            config, workdir, restart=args.restart, allow_config_change=args.allow_config_change
        )
    except USER_ERRORS as error:
        raise cli.UserError(cli.sentence(error)) from error
    print(json.dumps({"workdir": str(workdir), **metrics}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
