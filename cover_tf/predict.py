"""Classify video and image files with an export or a `.keras` model: every video as a whole.

    python -m cover_tf.predict FILE [FILE ...] --model EXPORT_DIR|FILE.keras [--head NAME]
        [--top 5] [--json] [--datasets datasets.json] [--short-side N] [--fps F] [--verbose]
        [--first-clip] [--no-downscale]
        [--timeline] [--window SECONDS] [--stride SECONDS] [--plot timeline.png]

Every video is classified over its whole duration. It is streamed (never held in memory whole:
memory does not grow with its length) and cut into windows of one clip of the heads (num_frames x
frame_stride frames at the video's rate; 1 s when every head asked is an image head; --window and
--stride change them); each window is classified as evaluation classifies a clip (the head's eval
views inside the window), and the answer ranks the classes by their probability averaged over the
windows. It says what it covered: "duration" (seconds), "covered" ([[start, end]] seconds the
windows classified), "damaged" ([[start, end]] seconds a damaged file's decoder refused: skipped,
decoding resumes after them; the reasons in "damage") and "gaps" (seconds without frames).
--first-clip classifies the first window only (fast); its answer says "first_clip": true and what
it covered.

Videos are decoded with PyAV (any container it reads: mp4/H.264, webm/VP9, avi, ...) at the
heads' eval short side (larger frames are shrunk, smaller ones kept; --short-side sets the size).
With an export, frames still over its max_pixels (or a window over its max_request_bytes) are
shrunk on this side to fit and the answer holds "resized"; --no-downscale sends them as decoded
(the export refuses them). Image files (.jpg, .png, ... by extension) are read as the image
builders read them (PIL) and classified as one-frame videos.

Every head answers when --head is omitted. With an export folder (a version folder or the export
base, whose highest version is used) the SavedModel's signatures run the eval preprocessing; with
a `.keras` file the model runs on `eval_preprocess`'s views directly. The model path may be any
tf.io.gfile URL (`gs://`, `ram://`).

Output: per file one JSON object per line (--json) or a few lines of text. With --timeline
(implied by --window, --stride or --plot) every window's line is printed as soon as it is
classified (start, end, top classes), then the video's summary (classes by mean probability,
runs of one top-1 class); --plot draws it. A progress bar is drawn on stderr when it is a
terminal.

Exit status: 0 when every file was classified (a damaged video's answer lists its damage); 1 when
some files were skipped (missing, unreadable, refused by the model: their line holds "error");
2 when nothing was left to classify, or the model or a flag cannot be used:
`predict: error: <one sentence>` on stderr (--verbose adds the traceback).

`classify_file` turns one file into its answer (decode, windows, model, summary); the CLI only
parses arguments and prints.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np
import PIL.Image
import tensorflow as tf

from cover_tf import cli
from cover_tf.builders.image_examples import read_image
from cover_tf.builders.video_decode import fit_pixels
from cover_tf.retrieval.embedding import IMAGE_EXTENSIONS
from cover_tf.serving.predictors import make_predictor
from cover_tf.serving.timeline import classify_timeline, plot_timeline, window_heads

PROG = "predict"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cover_tf.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Usage mistakes in the commands' one style: `predict: error: <sentence>`, exit 2.
    parser.error = lambda message: sys.exit(cli.fail(PROG, cli.UserError(message)))
    parser.add_argument("videos", nargs="+", metavar="FILE", help="video or image files")
    parser.add_argument("--model", required=True, help="export folder or .keras file")
    parser.add_argument("--datasets", help="datasets.json for a .keras model")
    parser.add_argument("--head", help="one head (default: every head)")
    parser.add_argument("--top", type=int, default=5, help="classes shown per head")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--short-side", type=int, help="decode at this short side (default: the heads' eval one)"
    )
    parser.add_argument("--fps", type=float, help="subsample frames to this rate when decoding")
    parser.add_argument(
        "--first-clip",
        action="store_true",
        help="classify only the first window of each video (the answer says what it covered)",
    )
    parser.add_argument(
        "--no-downscale",
        action="store_true",
        help="send frames over the export's max_pixels as decoded (the export refuses them)",
    )
    parser.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    parser.add_argument("--timeline", action="store_true", help="print every window's classes too")
    parser.add_argument("--window", type=float, help="seconds per window (default: one clip)")
    parser.add_argument("--stride", type=float, help="seconds between windows (default: window)")
    parser.add_argument("--plot", help="PNG of the classes over time (one video)")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top must be >= 1, got {args.top}")
    if args.short_side is not None and args.short_side < 1:
        parser.error(f"--short-side must be >= 1 pixel, got {args.short_side}")
    for name in ("window", "stride", "fps"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            parser.error(f"--{name} must be > 0, got {value}")
    args.timeline = args.timeline or any(
        value is not None for value in (args.window, args.stride, args.plot)
    )
    if args.plot is not None and len(args.videos) != 1:
        parser.error(f"--plot draws one video's timeline; got {len(args.videos)} files")
    return args


def is_image(path) -> bool:
    return pathlib.Path(str(path)).suffix.lower() in IMAGE_EXTENSIONS


def refused(path, error: tf.errors.InvalidArgumentError) -> dict:
    """The answer of a file the model refused: the limit's sentence from the graph's check."""
    reason = error.message.strip().splitlines()
    reason = next((line for line in reason if "assertion failed" in line), reason[-1])
    return {"video": str(path), "error": f"the model refused the file: {reason}"}


def read_image_file(path, short_side) -> np.ndarray:
    """uint8 [H, W, 3] as the image builders read it; ValueError with the builders' reason."""
    try:
        return read_image(path, short_side)
    except FileNotFoundError:
        reason = "file not found"
    except IsADirectoryError:
        reason = "is a directory"
    except PIL.UnidentifiedImageError:  # Its message holds a memory address: not reproducible.
        reason = "UnidentifiedImageError: not an image PIL can read"
    except (OSError, ValueError, PIL.Image.DecompressionBombError) as error:
        reason = f"{type(error).__name__}: {error}"
    raise ValueError(f"cannot read image {str(path)!r}: {reason}")


def classify_image(predictor, path, args) -> dict:
    """{"video", "kind": "image", "frames": 1, "frame_size", "heads", "seconds"} of an image."""
    try:
        pixels = read_image_file(path, args.short_side)
    except ValueError as error:
        return {"video": str(path), "error": str(error)}
    answer = {"video": str(path), "kind": "image", "frames": 1}
    height, width = pixels.shape[:2]
    limits = [
        predictor.max_pixels,
        predictor.max_request_bytes and predictor.max_request_bytes // 3,
    ]
    limit = min((value for value in limits if value), default=None)
    fitted = fit_pixels(height, width, None if args.no_downscale else limit)
    if fitted != (height, width):
        image = PIL.Image.fromarray(pixels).resize(fitted[::-1], PIL.Image.BILINEAR)
        pixels = np.asarray(image)
        answer["resized"] = {
            "from": [height, width],
            "to": list(fitted),
            "why": f"the model's limit of {limit} pixels",
        }
    start = time.perf_counter()
    try:
        probabilities = predictor.probabilities(pixels[None], head=args.head)
    except tf.errors.InvalidArgumentError as error:
        return refused(path, error)
    names = {head: predictor.class_names(head, len(v)) for head, v in probabilities.items()}
    answer["frame_size"] = list(pixels.shape[:2])
    answer["heads"] = window_heads(probabilities, names, args.top)
    answer["seconds"] = round(time.perf_counter() - start, 3)
    return answer


def classify_file(predictor, path, args, on_window=None) -> dict:
    """One file's answer: the timeline summary of a video (see `classify_timeline`) with, per
    head, its top classes by mean probability over the windows; an image's answer; or
    {"video", "error"} for a file that was skipped."""
    if is_image(path):
        return classify_image(predictor, path, args)
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
            on_window=on_window,
            max_windows=1 if args.first_clip else None,
            fit_limits=not args.no_downscale,
            keep_windows=args.plot is not None,
        )
    except tf.errors.InvalidArgumentError as error:
        return refused(path, error)
    if args.first_clip and "error" not in summary:
        summary["first_clip"] = True
    return summary


def whole_answer(summary: dict) -> dict:
    """A video's answer without --timeline: the summary with, per head, its top classes as
    {"index", "class", "probability"} (the probability averaged over the windows)."""
    if "summary" not in summary:
        return summary
    answer = {key: value for key, value in summary.items() if key not in ("summary", "timeline")}
    answer["heads"] = {
        head: [
            {"index": e["index"], "class": e["class"], "probability": e["mean_probability"]}
            for e in entry["top"]
        ]
        for head, entry in summary["heads"].items()
    }
    return answer


def spans_text(spans) -> str:
    return ", ".join(f"{start:.1f}-{end:.1f}" for start, end in spans) or "nothing"


def format_coverage(answer: dict) -> list:
    """The lines that say what a video's answer covered."""
    duration = answer.get("duration")
    length = f"{duration:.1f} s" if duration is not None else "unknown length"
    windows = answer["windows"]
    detail = f"{windows} windows of {answer['window']:.2f} s" if windows != 1 else "1 window"
    if answer.get("first_clip"):
        head = f"first clip only: covered {spans_text(answer['covered'])} s of {length}"
    else:
        head = f"{length}, covered {spans_text(answer['covered'])} s"
    lines = [f"{answer['video']}: {head} ({detail}, {answer['frames']} frames)"]
    for (start, end), reason in zip(answer["damaged"], answer.get("damage", []), strict=False):
        lines.append(f"  damaged {start:.1f}-{end:.1f} s, skipped ({reason})")
    if answer.get("gaps"):
        lines.append(f"  no frames in {spans_text(answer['gaps'])} s")
    if "resized" in answer:
        resized = answer["resized"]
        lines.append(
            "  frames shrunk from {}x{} to {}x{} ({})".format(
                *resized["from"][::-1], *resized["to"][::-1], resized["why"]
            )
        )
    return lines


def format_answer(answer: dict) -> str:
    if "error" in answer and "heads" not in answer:
        return f"{answer['video']}: SKIPPED {answer['error']}"
    if answer.get("kind") == "image":
        height, width = answer["frame_size"]
        lines = [f"{answer['video']}: image ({width}x{height})"]
    else:
        lines = format_coverage(answer)
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
    if "summary" not in summary:
        return format_answer(summary)
    lines = format_coverage(summary)
    lines[0] += f", {summary['video_seconds_per_second']} s of video per second"
    for head, entry in summary["heads"].items():
        classes = ", ".join(f"{e['class']} {e['mean_probability']:.3f}" for e in entry["top"])
        lines.append(f"  {head}: {classes}")
    return "\n".join(lines)


@cli.command(PROG)
def main(argv=None) -> int:
    args = parse_args(argv)
    predictor = make_predictor(args.model, args.datasets)
    if args.head is not None and args.head not in predictor.head_names:
        raise cli.UserError(
            f"unknown head {args.head!r}; the model has {list(predictor.head_names)}"
        )

    def show(window):
        print(json.dumps(window) if args.json else format_window(window), flush=True)

    skipped = 0
    for path in args.videos:
        answer = classify_file(predictor, path, args, on_window=show if args.timeline else None)
        if args.plot is not None and answer.get("timeline"):
            plot_timeline(answer, args.plot)
        if args.timeline:
            shown = {key: value for key, value in answer.items() if key != "timeline"}
            print(json.dumps(shown) if args.json else format_summary(answer), flush=True)
        else:
            answer = whole_answer(answer)
            print(json.dumps(answer) if args.json else format_answer(answer), flush=True)
        skipped += "error" in answer
    if skipped == len(args.videos):
        files = "the file was" if skipped == 1 else f"all {skipped} files were"
        raise cli.UserError(f"nothing left to classify: {files} skipped (the reasons are above)")
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
