"""Classifying every window of a video of any length: JSON lines per window, a summary, a chart.

`classify_timeline` streams a file (`VideoStream`), cuts it into windows (`sliding_windows`) and
runs a predictor (`cover_tf.serving.predictors`) on each window as on a whole clip (the head's eval
views are sampled inside the window). Memory is bounded by one window of frames, decoded at the
heads' eval short side, whatever the video's length. `predict --window/--stride/--plot` uses it.
"""

import sys
import time

import numpy as np

from cover_tf.builders.video_decode import VideoDecodeError
from cover_tf.serving.video_stream import VideoStream, default_window, sliding_windows


def head_eval_fields(predictor, head: str) -> dict:
    """The eval preprocessing fields (num_frames, frame_stride, eval_short_side, ...) of a head."""
    specs = getattr(predictor, "specs", None)
    if specs is not None:
        config = specs[head].eval_config
        return {
            "is_image": bool(config.is_image),
            "num_frames": config.num_frames,
            "frame_stride": config.frame_stride,
            "eval_short_side": config.eval_short_side,
        }
    return predictor.metadata.get("heads", {}).get(head, {}).get("eval", {})


def clip_geometry(predictor, heads) -> tuple[int, int | None]:
    """(frames the longest clip of `heads` spans, the largest eval short side) of a predictor.

    An image head spans one frame. A head without eval metadata (an old export) counts as 8
    frames x stride 1 and leaves the short side unknown (None: decode at full size).
    """
    span, short_side = 1, 0
    for head in heads:
        fields = head_eval_fields(predictor, head)
        if not fields:
            return max(span, 8), None
        if not fields.get("is_image"):
            span = max(span, fields.get("num_frames", 8) * max(1, fields.get("frame_stride", 1)))
        short_side = max(short_side, fields.get("eval_short_side") or 0)
    return span, short_side or None


class Progress:
    """A progress bar over a video's seconds on stderr, drawn only when stderr is a terminal.

    Args:
      total: the video's duration in seconds (None: unknown).
      label: text before the bar.
    """

    def __init__(self, total, label: str):
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit="s", file=sys.stderr, leave=False)
        self.done = 0.0

    def advance_to(self, seconds: float) -> None:
        if self.bar is not None and seconds > self.done:
            self.bar.update(seconds - self.done)
            self.done = seconds

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def summarise(windows: list[dict], top: int) -> dict:
    """Per head: classes by mean probability over the windows, and runs of one top-1 class.

    A class outside a window's top k counts 0 there, so `mean_probability` is exact when k
    covers every class and a lower bound otherwise.
    """
    heads = {}
    if not windows:
        return heads
    for head in windows[0]["heads"]:
        totals, names, firsts = {}, {}, {}
        segments = []
        for answer in windows:
            entries = answer["heads"][head]
            for entry in entries:
                totals[entry["index"]] = totals.get(entry["index"], 0.0) + entry["probability"]
                names[entry["index"]] = entry["class"]
            first = entries[0]["index"]
            firsts[first] = firsts.get(first, 0) + 1
            if segments and segments[-1]["index"] == first:
                segments[-1]["end"] = answer["end"]
            else:
                segments.append({"start": answer["start"], "end": answer["end"], "index": first})
        order = sorted(totals, key=lambda index: (-totals[index], index))[:top]
        heads[head] = {
            "top": [
                {
                    "index": index,
                    "class": names[index],
                    "mean_probability": totals[index] / len(windows),
                    "top1_windows": firsts.get(index, 0),
                }
                for index in order
            ],
            "segments": [
                {"start": s["start"], "end": s["end"], "class": names[s["index"]]} for s in segments
            ],
        }
    return heads


def classify_timeline(
    predictor,
    path,
    *,
    head=None,
    top: int = 5,
    window: float | None = None,
    stride: float | None = None,
    short_side: int | None = None,
    fps: float | None = None,
    on_window=None,
) -> dict:
    """Classifies every window of a video file; returns the video-level summary.

    Args:
      predictor: a `SavedModelPredictor` or `KerasPredictor`.
      path: the video file.
      head: one head, or None for every head.
      top: classes per window and in the summary.
      window: seconds per window; None: the longest clip of the heads (num_frames x frame_stride
        frames at the decoded rate).
      stride: seconds between window starts; None: `window` (windows tile the video).
      short_side: decode at this short side; None: the heads' largest eval short side.
      fps: subsample the video to this rate first (None: the source's rate).
      on_window: called with each window's answer {"video", "window", "start", "end", "frames",
        "heads"} as soon as it is classified.

    Returns:
      {"video", "summary": True, "duration", "fps", "window", "stride", "windows", "heads",
       "seconds", "video_seconds_per_second"} plus "error" when the file broke off mid-way
      (the windows before it are kept); {"video", "error"} when nothing could be read.
    """
    heads = predictor.head_names if head is None else (head,)
    span, eval_short_side = clip_geometry(predictor, heads)
    short_side = short_side or eval_short_side
    start_time = time.perf_counter()
    answers, error, progress = [], None, None
    try:
        with VideoStream(path, short_side=short_side, fps=fps) as stream:
            window = window or default_window(span, 1, stream.fps)
            stride = stride or window
            max_frames = predictor.max_frames
            if max_frames is not None and round(window * stream.fps) > max_frames:
                return {
                    "video": str(path),
                    "error": f"a {window:g} s window holds {round(window * stream.fps)} frames at "
                    f"{stream.fps:g} fps, more than the model's max_frames={max_frames}; "
                    "use a shorter --window or a lower --fps",
                }
            progress = Progress(stream.duration, str(path))
            try:
                for clip in sliding_windows(stream, stream.fps, window, stride):
                    answer = {
                        "video": str(path),
                        "window": clip.index,
                        "start": round(clip.start, 3),
                        "end": round(clip.end, 3),
                        "frames": int(clip.frames.shape[0]),
                        "heads": predictor.predict(clip.frames, head=head, top=top),
                    }
                    answers.append(answer)
                    progress.advance_to(clip.end)
                    if on_window is not None:
                        on_window(answer)
            except VideoDecodeError as broken:
                if not answers:
                    raise
                error = broken.reason
            fps_out = stream.fps
    except VideoDecodeError as broken:
        return {"video": str(path), "error": str(broken)}
    finally:
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - start_time
    duration = answers[-1]["end"] if answers else 0.0
    summary = {
        "video": str(path),
        "summary": True,
        "duration": duration,
        "fps": fps_out,
        "window": window,
        "stride": stride,
        "windows": len(answers),
        "heads": summarise(answers, top),
        "seconds": round(seconds, 3),
        "video_seconds_per_second": round(duration / seconds, 3) if seconds > 0 else None,
    }
    if error is not None:
        summary["error"] = f"stopped at {duration:g} s: {error}"
    summary["timeline"] = answers
    return summary


def plot_timeline(summary: dict, out, max_classes: int = 8) -> None:
    """Writes a PNG: per head, the probability of its top classes over time, window by window."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    windows = summary["timeline"]
    heads = list(summary["heads"])
    figure, axes = plt.subplots(
        len(heads), 1, figsize=(10, 2.6 * len(heads)), squeeze=False, sharex=True
    )
    for axis, head in zip(axes[:, 0], heads, strict=True):
        classes = [entry["index"] for entry in summary["heads"][head]["top"][:max_classes]]
        names = {entry["index"]: entry["class"] for entry in summary["heads"][head]["top"]}
        edges = [w["start"] for w in windows] + [windows[-1]["end"]]
        for index in classes:
            values = [
                next((e["probability"] for e in w["heads"][head] if e["index"] == index), 0.0)
                for w in windows
            ]
            axis.stairs(values, np.maximum.accumulate(edges), label=names[index], linewidth=1.5)
        axis.set_ylim(0, 1)
        axis.set_ylabel("probability")
        axis.set_title(f"{head}: {summary['video']}", fontsize=9)
        axis.legend(fontsize=7, loc="upper right", ncol=2)
    axes[-1, 0].set_xlabel("seconds")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
