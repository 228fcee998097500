"""Classify video files with an export or a `.keras` model, sampling views like evaluation.

    python -m cover_tf.predict VIDEO [VIDEO ...] --model EXPORT_DIR|FILE.keras [--head NAME]
        [--top 5] [--json] [--datasets datasets.json] [--short-side N] [--fps F] [--verbose]
        [--timeline] [--window SECONDS] [--stride SECONDS] [--plot timeline.png]

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

With --timeline (implied by --window, --stride or --plot) each video is streamed, never held in
memory whole: every window of it is classified (one line per window: start, end, top classes)
and a video-level summary follows (classes by mean probability, runs of one top-1 class). The
window defaults to the head's clip (num_frames x frame_stride frames at the video's rate), the
stride to the window; frames are decoded at the heads' eval short side unless --short-side says.
A progress bar is drawn on stderr when it is a terminal.
"""

import argparse
import json
import sys
import time

import tensorflow as tf

from cover_tf.builders.video_decode import VideoDecodeError, decode_video
from cover_tf.serving.heads import SourceError
from cover_tf.serving.predictors import make_predictor
from cover_tf.serving.timeline import classify_timeline, plot_timeline


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
    parser.add_argument(
        "--timeline", action="store_true", help="stream the video, classify every window"
    )
    parser.add_argument("--window", type=float, help="seconds per window (default: one clip)")
    parser.add_argument("--stride", type=float, help="seconds between windows (default: window)")
    parser.add_argument("--plot", help="PNG of the classes over time (one video)")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top must be >= 1, got {args.top}")
    for name in ("window", "stride", "fps"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            parser.error(f"--{name} must be > 0 seconds, got {value}")
    args.timeline = args.timeline or any(
        value is not None for value in (args.window, args.stride, args.plot)
    )
    if args.plot is not None and len(args.videos) != 1:
        parser.error(f"--plot draws one video's timeline; got {len(args.videos)} videos")
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


def format_window(answer: dict) -> str:
    classes = "; ".join(
        f"{head}: " + ", ".join(f"{e['class']} {e['probability']:.2f}" for e in top)
        for head, top in answer["heads"].items()
    )
    return f"{answer['video']} [{answer['start']:8.2f} - {answer['end']:8.2f} s] {classes}"


def format_summary(summary: dict) -> str:
    if "timeline" not in summary:
        return format_answer(summary)
    lines = [
        f"{summary['video']}: {summary['windows']} windows over {summary['duration']:.1f} s "
        f"({summary['video_seconds_per_second']} s of video per second)"
    ]
    for head, entry in summary["heads"].items():
        classes = ", ".join(f"{e['class']} {e['mean_probability']:.3f}" for e in entry["top"])
        lines.append(f"  {head}: {classes}")
    if "error" in summary:
        lines.append(f"  ERROR {summary['error']}")
    return "\n".join(lines)


def classify_timeline_file(predictor, path, args) -> dict:
    """Streams one video, prints every window's line as it comes, then its summary line."""

    def show(answer):
        print(json.dumps(answer) if args.json else format_window(answer), flush=True)

    try:
        summary = classify_timeline(
            predictor,
            path,
            head=args.head,
            top=args.top,
            window=args.window,
            stride=args.stride,
            short_side=args.short_side,
            fps=args.fps,
            on_window=show,
        )
    except tf.errors.InvalidArgumentError as error:
        reason = error.message.strip().splitlines()
        reason = next((line for line in reason if "assertion failed" in line), reason[-1])
        return {"video": str(path), "error": f"the model refused the video: {reason}"}
    if args.plot is not None and summary.get("timeline"):
        plot_timeline(summary, args.plot)
    return summary


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
        if args.timeline:
            answer = classify_timeline_file(predictor, path, args)
            shown = {key: value for key, value in answer.items() if key != "timeline"}
            print(json.dumps(shown) if args.json else format_summary(answer), flush=True)
        else:
            answer = classify_file(predictor, path, args)
            print(json.dumps(answer) if args.json else format_answer(answer), flush=True)
        failures += "error" in answer
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
