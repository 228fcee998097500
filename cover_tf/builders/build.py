"""Prepares a dataset: `python -m cover_tf.builders.build NAME[/CONFIG] [options]`.

Finds project builders by name (see `registry`); `tfds build datasets/<name>` (TFDS's CLI, which
needs a path) runs the same preparation. `--beam_pipeline_options` as in `tfds build`.

    python -m cover_tf.builders.build cover_synthetic --data_dir ~/tensorflow_datasets
    python -m cover_tf.builders.build kinetics/400 --manual_dir /data/kinetics400 --short_side 256
"""

import argparse
import sys
import time

import tensorflow_datasets as tfds
from absl import logging

from cover_tf import cli
from cover_tf.builders import registry


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cover_tf.builders.build", description=__doc__.split("\n")[0]
    )
    parser.add_argument("name", help='builder name with optional config, e.g. "kinetics/400"')
    parser.add_argument("--data_dir", default=None, help="TFDS data dir (default: TFDS's)")
    parser.add_argument("--manual_dir", default=None, help="folder of the downloaded dataset")
    parser.add_argument("--short_side", type=int, default=None, help="video builders: resize")
    parser.add_argument("--fps", type=float, default=None, help="video builders: frame rate")
    parser.add_argument(
        "--all_configs", action="store_true", help="prepare every config of the builder"
    )
    parser.add_argument(
        "--beam_pipeline_options",
        default=None,
        help='prepare on Apache Beam, e.g. "runner=DirectRunner,direct_num_workers=2,'
        'direct_running_mode=multi_processing"',
    )
    parser.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    return parser.parse_args(argv)


@cli.command("build")
def main(argv=None) -> int:
    """Errors (an unknown builder, a missing manual_dir: TFDS's own AssertionError) end in one
    line `build: error: <sentence>` and exit status 2 (`cli.command`)."""
    args = parse_args(argv)
    registry.check_builder(args.name)
    prepare(args)
    return 0


def prepare(args: argparse.Namespace) -> None:
    overrides = {k: v for k, v in (("short_side", args.short_side), ("fps", args.fps)) if v}
    names = [args.name]
    if args.all_configs or "/" not in args.name:
        builder = registry.get_builder(args.name, data_dir=args.data_dir)
        if builder.BUILDER_CONFIGS and (args.all_configs or "/" not in args.name):
            names = [f"{builder.name}/{c.name}" for c in builder.BUILDER_CONFIGS]
    config = tfds.download.DownloadConfig(manual_dir=args.manual_dir)
    if args.beam_pipeline_options:
        from apache_beam.options.pipeline_options import PipelineOptions

        flags = [f"--{option}" for option in args.beam_pipeline_options.split(",")]
        config.beam_options = PipelineOptions(flags=flags)
    for name in names:
        start = time.perf_counter()
        builder = registry.get_builder(name, data_dir=args.data_dir, **overrides)
        builder.download_and_prepare(download_config=config)
        sizes = {split: info.num_examples for split, info in builder.info.splits.items()}
        print(f"{name}: {sizes} in {time.perf_counter() - start:.1f} s -> {builder.data_dir}")
        logging.info("Prepared %s", name)


if __name__ == "__main__":
    sys.exit(main())
