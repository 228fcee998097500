"""The main job: `python -m cover_tf.train --config configs/demo.yaml [--set KEY=VALUE ...]
[--workdir DIR]`.

Builds the strategy, the data (preparing the embedded synthetic datasets on first use), the model
(optionally from a converted checkpoint) and trains it with Keras `fit`; then evaluates every
dataset with its own head and writes `metrics.json` in the workdir. Running the same command again
after a crash resumes from the last completed epoch.
"""

import argparse
import json
import pathlib
import sys

from cover_tf.config import ConfigError, load_config
from cover_tf.training import loop


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m cover_tf.train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", required=True, help="experiment YAML (see configs/)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field"
    )
    parser.add_argument("--workdir", default=None, help="default: runs/<config name>")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.set)
    except (ConfigError, FileNotFoundError) as error:
        print(f"train: {error}", file=sys.stderr)
        return 2
    workdir = pathlib.Path(args.workdir or pathlib.Path("runs") / config.name)
    try:
        metrics = loop.run(config, workdir)
    except ConfigError as error:
        print(f"train: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"workdir": str(workdir), **metrics}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
