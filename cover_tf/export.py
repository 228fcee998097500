"""Export a trained CoVeR model as a SavedModel for TF Serving.

    python -m cover_tf.export --workdir WORKDIR --out EXPORT_BASE/NAME [--version N]
    python -m cover_tf.export --checkpoint FILE.keras [--datasets datasets.json] --out BASE/NAME
        [--top-k 5] [--max-frames 256] [--max-pixels 2073600] [--max-batch 8] [--no-self-check]
        [--embedding-head NAME]

Writes `BASE/NAME/<version>/` (TF Serving's layout; the version defaults to 1 + the highest
existing) with signatures `<head>` (uint8 frames [B, T, H, W, 3]), `<head>_jpeg` (JPEG frames
[B, T]), `serving_default` (uint8 frames, every head) and `embedding` / `embedding_jpeg` (the
L2-normalised backbone feature averaged over the eval views of --embedding-head, default the
first head in name order), reloads it, compares it with the Keras
model and prints a JSON summary (path, version, signatures, self-check differences, size).
"""

import argparse
import json
import sys

from cover_tf.serving.exporter import export_model
from cover_tf.serving.heads import load_source
from cover_tf.serving.signatures import ServingLimits


def parse_args(argv=None) -> argparse.Namespace:
    defaults = ServingLimits()
    parser = argparse.ArgumentParser(prog="python -m cover_tf.export", description=__doc__)
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
    parser.add_argument(
        "--embedding-head",
        help="head whose eval views the embedding signatures use (default: first head by name)",
    )
    parser.add_argument(
        "--no-self-check", action="store_true", help="skip the reload-and-compare check"
    )
    args = parser.parse_args(argv)
    if args.datasets and not args.checkpoint:
        parser.error("--datasets goes with --checkpoint (a workdir has its own datasets.json)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    model, specs = load_source(
        workdir=args.workdir, checkpoint=args.checkpoint, datasets=args.datasets
    )
    limits = ServingLimits(args.max_frames, args.max_pixels, args.max_batch)
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
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
