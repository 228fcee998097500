"""Export a trained CoVeR model as a SavedModel for TF Serving.

    python -m cover_tf.export --workdir WORKDIR --out EXPORT_BASE/NAME [--version N]
    python -m cover_tf.export --checkpoint FILE.keras [--datasets datasets.json] --out BASE/NAME
        [--top-k 5] [--max-frames 256] [--max-pixels 2073600] [--max-batch 8] [--no-self-check]
        [--memory-budget-gib 8 | --max-request-bytes N] [--embedding-head NAME] [--verbose]

Writes `BASE/NAME/<version>/` (TF Serving's layout; the version defaults to 1 + the highest
existing) with signatures `<head>` (uint8 frames [B, T, H, W, 3]), `<head>_jpeg` (JPEG frames
[B, T]), `serving_default` (uint8 frames, every head) and `embedding` / `embedding_jpeg` (the
L2-normalised backbone feature averaged over the eval views of --embedding-head, default the
first head in name order), reloads it, compares it with the Keras model and prints a JSON summary
(path, version, signatures, limits, self-check differences, size). The largest request's bytes
come from --memory-budget-gib (the serving process's memory, default 8 GiB) unless
--max-request-bytes gives them. Paths may be local or any tf.io.gfile URL (`gs://`, `ram://`).
A missing or damaged input, or an --out that is a file or on a read-only filesystem, ends with
`export: error: <one sentence>` on stderr and exit status 2 before anything is written
(--verbose: the traceback too).
"""

import argparse
import dataclasses
import json
import os
import sys
import zipfile

import tensorflow as tf

from cover_tf import cli
from cover_tf.serving.heads import load_source
from cover_tf.serving.limits import GIB, ServingLimits, limits_for_budget
from cover_tf.workdir import is_local

PROG = "export"
COVER_MODEL = "CoVeRModel"


def check_output(path, flag: str = "--out", folder: bool = True) -> None:
    """Raises `cli.UserError` (one sentence naming `flag` and `path`) when the output `path`
    cannot be written: it is a file (a folder with `folder=False`), lies under a file, or (local
    disk) its nearest existing folder is on a read-only filesystem or not writable. Object-store
    URLs are checked for the first case only (their writes are checked when they happen)."""
    path = str(path)
    if tf.io.gfile.exists(path) and tf.io.gfile.isdir(path) != folder:
        what = "a file, not a folder" if folder else "a folder, not a file"
        raise cli.UserError(f"{flag} {path!r} is {what}")
    if not is_local(path):
        return
    existing = os.path.dirname(os.path.abspath(path)) if not folder else os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise cli.UserError(f"{flag} {path!r} cannot be created: {existing!r} is a file")
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise cli.UserError(f"{flag} {path!r} is on a read-only filesystem ({existing!r})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise cli.UserError(
            f"{flag} {path!r} cannot be written: no write permission in {existing!r}"
        )


def _holds_python_code(node) -> bool:
    """Whether a Keras config holds a serialised Python function (a Lambda layer's lambda)."""
    if isinstance(node, dict):
        return node.get("class_name") == "__lambda__" or any(
            _holds_python_code(value) for value in node.values()
        )
    if isinstance(node, list):
        return any(_holds_python_code(value) for value in node)
    return False


def check_model_file(path, what="the model file"):
    """Raises `cli.UserError` (one sentence naming `what` and `path`) unless `path` holds a
    CoVeR model Keras can load in safe mode: a missing file, a folder, a truncated or non-zip
    file, a model holding Python code (a Lambda layer: refused by Keras' safe mode, rightly) or
    another kind of model. Reads only the archive's config.json, through `tf.io.gfile`."""
    path = str(path)
    if not tf.io.gfile.exists(path):
        raise cli.UserError(f"{what} {path!r} does not exist")
    if tf.io.gfile.isdir(path):
        raise cli.UserError(f"{what} {path!r} is a folder, not a .keras file")
    try:
        with tf.io.gfile.GFile(path, "rb") as file, zipfile.ZipFile(file) as archive:
            config = json.loads(archive.read("config.json"))
    # A file shorter than zip's end record: gfile's seek refuses (an OpError), not BadZipFile.
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, tf.errors.OpError) as error:
        raise cli.UserError(
            f"{what} {path!r} is not a .keras archive (truncated, or another format)"
        ) from error
    if _holds_python_code(config):
        raise cli.UserError(
            f"{what} {path!r} holds Python code (a Lambda layer), which Keras' safe mode refuses "
            "to load; give a model saved by cover_tf (train, convert)"
        )
    if not isinstance(config, dict) or config.get("class_name") != COVER_MODEL:
        kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise cli.UserError(
            f"{what} {path!r} holds a Keras {kind}, not a CoVeR model; python -m "
            "cover_tf.convert makes one from a ViT or TimeSformer checkpoint"
        )


def parse_args(argv=None) -> argparse.Namespace:
    defaults = ServingLimits()
    parser = argparse.ArgumentParser(prog="python -m cover_tf.export", description=__doc__)
    # Usage mistakes in the commands' one style: `export: error: <sentence>`, exit 2.
    parser.error = lambda message: sys.exit(cli.fail(PROG, cli.UserError(message)))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", help="training workdir with model.keras and datasets.json")
    source.add_argument("--checkpoint", help="a cover_tf .keras file")
    parser.add_argument(
        "--datasets", help="datasets.json for --checkpoint (default: model-size centre view)"
    )
    parser.add_argument("--out", required=True, help="export base: EXPORT_BASE/NAME")
    parser.add_argument("--version", type=int, help="version number (default: 1 + highest)")
    parser.add_argument("--top-k", type=int, default=5, help="k of the top_k outputs")
    parser.add_argument("--max-frames", type=int, default=defaults.max_frames)
    parser.add_argument("--max-pixels", type=int, default=defaults.max_pixels)
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--memory-budget-gib",
        type=float,
        default=defaults.memory_budget_bytes / GIB,
        help="memory of the serving process; the largest request's bytes derive from it",
    )
    budget.add_argument(
        "--max-request-bytes", type=int, help="bytes of one request's frames, given directly"
    )
    parser.add_argument(
        "--embedding-head",
        help="head whose eval views the embedding signatures use (default: first head by name)",
    )
    parser.add_argument(
        "--no-self-check", action="store_true", help="skip the reload-and-compare check"
    )
    parser.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    args = parser.parse_args(argv)
    if args.datasets and not args.checkpoint:
        parser.error("--datasets goes with --checkpoint (a workdir has its own datasets.json)")
    return args


def export(args) -> dict:
    from cover_tf.serving.exporter import export_model  # the exporter loads only after parsing

    check_output(args.out)
    if args.checkpoint:
        check_model_file(args.checkpoint)
    model, specs = load_source(
        workdir=args.workdir, checkpoint=args.checkpoint, datasets=args.datasets
    )
    if args.max_request_bytes is not None:
        limits = ServingLimits(
            args.max_frames, args.max_pixels, args.max_batch, args.max_request_bytes, None
        )
    else:
        limits = limits_for_budget(
            int(args.memory_budget_gib * GIB),
            model,
            specs,
            args.max_frames,
            args.max_pixels,
            args.max_batch,
        )
    summary = export_model(
        model,
        specs,
        args.out,
        version=args.version,
        top_k=args.top_k,
        limits=limits,
        check=not args.no_self_check,
        embedding_head=args.embedding_head,
    )
    return {**summary, "limits": dataclasses.asdict(limits)}


@cli.command(PROG)
def main(argv=None) -> int:
    args = parse_args(argv)
    summary = export(args)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
