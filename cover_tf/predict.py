"""Classify video files with an export or a `.keras` model, sampling views like evaluation.

    python -m cover_tf.predict VIDEO [VIDEO ...] --model EXPORT_DIR|FILE.keras [--head NAME]
        [--top 5] [--json] [--datasets datasets.json] [--short-side N] [--fps F] [--verbose]

Videos are decoded with PyAV (any container it reads: mp4/H.264, webm/VP9, avi, ...). Every head
answers when --head is omitted. With an export folder (a version folder or the export base, whose
highest version is used) the SavedModel's signatures run the eval preprocessing; with a `.keras`
file the model runs on `eval_preprocess`'s views directly. A missing or undecodable file gets an
error line and the exit status is 1 at the end; the other files still get their answers.
A model that cannot be used (missing path, truncated or non-zip `.keras`, missing or broken
datasets.json, a folder that is no export) ends with one line on stderr and exit status 2
(--verbose: the traceback too). The model path may be any tf.io.gfile URL (`gs://`, `ram://`).

`classify_file` is the one function that turns a video file into its answer (decode, views,
model); the CLI only parses arguments and prints.
"""

import argparse
import json
import sys
import time

import tensorflow as tf

from cover_tf.builders.video_decode import VideoDecodeError, decode_video
from cover_tf.serving.heads import SourceError
from cover_tf.serving.predictors import make_predictor


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cover_tf.predict", description=__doc__)
    parser.add_argument("videos", nargs="+", metavar="VIDEO")
    parser.add_argument("--model", required=True, help="export folder or .keras file")
    parser.add_argument("--datasets", help="datasets.json for a .keras model")
    parser.add_argument("--head", help="one head (default: every head)")
    parser.add_argument("--top", type=int, default=5, help="classes shown per head")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--short-side", type=int, help="resize frames when decoding (pixels)")
    parser.add_argument("--fps", type=float, help="subsample frames to this rate when decoding")
    parser.add_argument("--verbose", action="store_true", help="tracebacks on model errors")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top must be >= 1, got {args.top}")
    return args


def classify_file(predictor, path, args) -> dict:
    """{"video", "frames", "heads", "seconds"} or {"video", "error"} for one file."""
    try:
        frames, _ = decode_video(
            path, short_side=args.short_side, fps=args.fps, max_frames=predictor.max_frames
        )
        start = time.perf_counter()
        heads = predictor.predict(frames, head=args.head, top=args.top)
    except VideoDecodeError as error:
        return {"video": str(path), "error": str(error)}
    except tf.errors.InvalidArgumentError as error:
        reason = error.message.strip().splitlines()
        reason = next((line for line in reason if "assertion failed" in line), reason[-1])
        return {"video": str(path), "error": f"the model refused the video: {reason}"}
    seconds = time.perf_counter() - start
    return {"video": str(path), "frames": int(frames.shape[0]), "heads": heads, "seconds": seconds}


def format_answer(answer: dict) -> str:
    if "error" in answer:
        return f"{answer['video']}: ERROR {answer['error']}"
    lines = [f"{answer['video']} ({answer['frames']} frames)"]
    for head, top in answer["heads"].items():
        classes = ", ".join(f"{entry['class']} {entry['probability']:.3f}" for entry in top)
        lines.append(f"  {head}: {classes}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        predictor = make_predictor(args.model, args.datasets)
    except SourceError as error:
        if args.verbose:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.head is not None and args.head not in predictor.head_names:
        print(
            f"error: unknown head {args.head!r}; the model has {list(predictor.head_names)}",
            file=sys.stderr,
        )
        return 2
    failures = 0
    for path in args.videos:
        answer = classify_file(predictor, path, args)
        failures += "error" in answer
        print(json.dumps(answer) if args.json else format_answer(answer), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
