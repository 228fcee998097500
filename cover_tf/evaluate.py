"""Evaluate a training workdir: every dataset through its own head, multi-view, plus a chart.

    python -m cover_tf.evaluate --workdir DIR [--checkpoint FILE.keras] [--clips N] [--crops 1|3]
        [--split NAME] [--max-examples N] [--batch-size N] [--out FILE.json] [--chart FILE.png]
        [--verbose]

Reads DIR/config.yaml and DIR/model.keras (or --checkpoint), resolves the datasets as training
does, and evaluates each one's eval split (or --split) with clips x crops views per video, the
softmax averaged over the views (the paper: 1 x 3). Views default to each dataset block's
`eval_clips` / `eval_crops`; --clips / --crops override them for every dataset. Writes
`<head>/top1`, `<head>/top5`, `<head>/num_examples`, `<head>/views` to DIR/eval_metrics.json
(or --out), prints them as one JSON line, and draws DIR/eval.png (or --chart): accuracy bars
against chance and, when DIR/history.csv exists, the training curves. Every file is read and
written through `tf.io.gfile`, so DIR may be a `gs://` (or any gfile) URL, as in training.

A workdir without config.yaml or model.keras, a model file that is no cover_tf model (truncated,
another format, a Keras model holding Python code such as a Lambda layer, which Keras' safe mode
refuses) or a config that does not fit the model ends with `evaluate: error: <one sentence>` on
stderr and exit status 2 (--verbose: the traceback too).
"""

import argparse
import dataclasses
import json
import sys

import keras
import tensorflow as tf

import cover_tf  # noqa: F401  (registers the serialisable classes for load_model)
from cover_tf import cli
from cover_tf import workdir as workdir_layout
from cover_tf.config import ConfigError, load_config
from cover_tf.export import check_model_file
from cover_tf.training import prepare_datasets, storage
from cover_tf.training.charts import plot_evaluation
from cover_tf.training.evaluation import evaluate_dataset

EVAL_CROPS = (1, 3)
PROG = "evaluate"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cover_tf.evaluate", description=__doc__.split("\n")[0]
    )
    # Usage mistakes in the commands' one style: `evaluate: error: <sentence>`, exit 2.
    parser.error = lambda message: sys.exit(cli.fail(PROG, cli.UserError(message)))
    parser.add_argument("--workdir", required=True, help="a training workdir (config.yaml, ...)")
    parser.add_argument(
        "--checkpoint", help=f"a .keras model (default: DIR/{workdir_layout.MODEL})"
    )
    parser.add_argument("--clips", type=int, help="clips per video (default: the config's)")
    parser.add_argument(
        "--crops", type=int, choices=EVAL_CROPS, help="crops per clip (default: the config's)"
    )
    parser.add_argument("--split", help="TFDS split for every dataset (default: eval_split)")
    parser.add_argument("--max-examples", type=int, help="default: the config's eval block")
    parser.add_argument("--batch-size", type=int, help="default: the config's eval block")
    parser.add_argument("--out", help="metrics JSON (default: DIR/eval_metrics.json)")
    parser.add_argument("--chart", help="PNG chart (default: DIR/eval.png)")
    parser.add_argument("--verbose", action="store_true", help="tracebacks of errors")
    args = parser.parse_args(argv)
    for name in ("clips", "max_examples", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return args


def view_overrides(datasets, clips=None, crops=None, split=None):
    """The dataset configs with `eval_clips` / `eval_crops` / `eval_split` replaced where given."""
    changes = {
        field: value
        for field, value in (("eval_clips", clips), ("eval_crops", crops), ("eval_split", split))
        if value is not None
    }
    return [dataclasses.replace(cfg, **changes) for cfg in datasets]


def evaluate_workdir(workdir, checkpoint=None, clips=None, crops=None, split=None, **options):
    """`(metrics, {head: num_classes})` of a workdir's model on every dataset of its config.

    `options`: `batch_size`, `max_examples` (default: the config's eval block).
    Raises FileNotFoundError for a missing config.yaml / model file, `cli.UserError` for a model
    file that is no loadable CoVeR model (`check_model_file`) and ConfigError when a dataset of
    the config has no head of the same name in the model.
    """
    files = workdir_layout.Workdir(workdir)
    model_path = str(checkpoint or files.model)
    if not tf.io.gfile.exists(files.config):
        raise FileNotFoundError(f"workdir {str(workdir)!r} has no {workdir_layout.CONFIG}")
    if not tf.io.gfile.exists(model_path):
        raise FileNotFoundError(f"no model file at {model_path!r}")
    # Through tf.io.gfile, like every workdir file: a gs:// (or ram://) workdir evaluates too.
    config = load_config(files.config, text=storage.read_text(files.config))
    batch_size = options.get("batch_size") or config.eval.batch_size
    max_examples = options.get("max_examples") or config.eval.max_examples

    check_model_file(model_path)
    model = keras.saving.load_model(model_path, compile=False)
    datasets, _ = prepare_datasets(config)
    datasets = view_overrides(datasets, clips, crops, split)
    for cfg in datasets:
        heads = getattr(model, "head_classes", {})
        if cfg.name not in heads:
            raise ConfigError(
                f"dataset {cfg.name!r} has no head in {model_path!r}; heads: {sorted(heads)}"
            )
        if heads[cfg.name] != cfg.num_classes:
            raise ConfigError(
                f"dataset {cfg.name!r} has {cfg.num_classes} classes but its head in "
                f"{model_path!r} has {heads[cfg.name]}"
            )
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std
    metrics = {}
    for cfg in datasets:
        metrics.update(evaluate_dataset(model, cfg, mean, std, batch_size, max_examples))
    return metrics, {cfg.name: cfg.num_classes for cfg in datasets}


@cli.command(PROG)
def main(argv=None):
    args = parse_args(argv)
    workdir = args.workdir
    files = workdir_layout.Workdir(workdir)
    metrics, num_classes = evaluate_workdir(
        workdir,
        checkpoint=args.checkpoint,
        clips=args.clips,
        crops=args.crops,
        split=args.split,
        batch_size=args.batch_size,
        max_examples=args.max_examples,
    )
    out = str(args.out or files.eval_metrics)
    storage.make_parent(out)
    storage.write_text(out, json.dumps(metrics, indent=1, sort_keys=True))
    plot_evaluation(metrics, num_classes, files.history, args.chart or files.eval_chart)
    print(json.dumps(metrics, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
