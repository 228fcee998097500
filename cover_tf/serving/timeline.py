"""Classifying every window of a video of any length: the whole-video answer, lines, a chart.

`classify_timeline` streams a file (`VideoStream`, reading past damaged data), cuts it into
windows (`sliding_windows`) and runs a predictor (`cover_tf.serving.predictors`) on each window as
on a whole clip (the head's eval views are sampled inside the window). The summary ranks every
class by its probability averaged over the windows and says which seconds were covered, damaged
or without frames. Memory is bounded by one window of frames, decoded at (at most) the heads' eval
short side and shrunk to the model's limits, whatever the video's length. `predict` uses it for
every video (its default answer and `--timeline`).
"""

import sys
import time

import numpy as np

from cover_tf.builders.video_decode import VideoDecodeError
from cover_tf.serving import client
from cover_tf.serving.video_stream import (
    VideoStream,
    add_span,
    default_window,
    sliding_windows,
    subtract_spans,
)


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


# The default window when every head asked is an image head (it classifies one frame a window).
IMAGE_WINDOW_SECONDS = 1.0


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


class Summary:
    """The video-level answer, accumulated window by window (memory: one vector per head).

    Per head: classes by their probability averaged over the windows (every class: exact), how
    many windows each was the top class of, and the runs of windows with one top class.
    """

    def __init__(self):
        self.totals, self.firsts, self.segments, self.names = {}, {}, {}, {}
        self.windows = 0

    def add(self, probabilities: dict, names: dict, start: float, end: float) -> None:
        """One window's {head: float32 [C]} and {head: class names}, over [start, end)."""
        self.windows += 1
        for head, values in probabilities.items():
            values = np.asarray(values, np.float64)
            if head not in self.totals:
                self.totals[head] = np.zeros_like(values)
                self.firsts[head] = np.zeros(values.shape, np.int64)
                self.segments[head] = []
            self.totals[head] += values
            self.names[head] = names[head]
            first = int(np.argmax(values))
            self.firsts[head][first] += 1
            segments = self.segments[head]
            if segments and segments[-1]["index"] == first:
                segments[-1]["end"] = end
            else:
                segments.append({"start": start, "end": end, "index": first})

    def mean(self, head: str) -> np.ndarray:
        return self.totals[head] / max(self.windows, 1)

    def heads(self, top: int) -> dict:
        """{head: {"top": [{"index", "class", "mean_probability", "top1_windows"}],
        "segments": [{"start", "end", "class"}]}}."""
        answers = {}
        for head in self.totals:
            mean, names = self.mean(head), self.names[head]
            order = np.argsort(-mean, kind="stable")[:top]
            answers[head] = {
                "top": [
                    {
                        "index": int(index),
                        "class": names[index],
                        "mean_probability": float(mean[index]),
                        "top1_windows": int(self.firsts[head][index]),
                    }
                    for index in order
                ],
                "segments": [
                    {"start": s["start"], "end": s["end"], "class": names[s["index"]]}
                    for s in self.segments[head]
                ],
            }
        return answers


def window_heads(probabilities: dict, names: dict, top: int) -> dict:
    """{head: [{"index", "class", "probability"}]}: the top classes of one window."""
    return {
        head: client.top_classes(client.rank_classes(values[None], names[head], top), top)
        for head, values in probabilities.items()
    }


def fit_to_limits(predictor, stream, window_frames: int) -> str | None:
    """Shrinks a stream's frames to what the model takes (its max_pixels, and max_request_bytes
    for `window_frames` frames); returns the limit that binds, in words, or None."""
    limits = []
    if getattr(predictor, "max_pixels", None):
        limits.append((int(predictor.max_pixels), f"max_pixels={predictor.max_pixels}"))
    if getattr(predictor, "max_request_bytes", None):
        pixels = max(1, int(predictor.max_request_bytes) // (3 * max(1, window_frames)))
        limits.append(
            (pixels, f"max_request_bytes={predictor.max_request_bytes} for {window_frames} frames")
        )
    if not limits:
        return None
    pixels, reason = min(limits)
    stream.max_pixels = pixels
    return f"the model's {reason}"


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
    max_windows: int | None = None,
    fit_limits: bool = True,
    keep_windows: bool = True,
) -> dict:
    """Classifies every window of a video file; returns the video-level summary.

    The file is read to its end, past damaged data (`VideoStream(resume=True)`): the seconds the
    decoder refused are reported as `damaged` and the windows after them are classified.

    Args:
      predictor: a `SavedModelPredictor` or `KerasPredictor`.
      path: the video file.
      head: one head, or None for every head.
      top: classes per window and in the summary.
      window: seconds per window; None: the longest clip of the heads (num_frames x frame_stride
        frames at the decoded rate), or IMAGE_WINDOW_SECONDS when they are all image heads.
      stride: seconds between window starts; None: `window` (windows tile the video).
      short_side: decode at this short side; None: frames larger than the heads' largest eval
        short side are shrunk to it (smaller ones are kept: the model resizes them itself).
      fps: subsample the video to this rate first (None: the source's rate).
      on_window: called with each window's answer {"video", "window", "start", "end", "frames",
        "heads"} as soon as it is classified.
      max_windows: stop after this many windows (None: the whole video).
      fit_limits: shrink frames over the model's max_pixels (or a window over its
        max_request_bytes) on this side instead of sending what the model refuses.
      keep_windows: return every window's answer under "timeline" (for a chart).

    Returns:
      {"video", "summary": True, "duration" (seconds: the video's end as read, or as declared
       when `max_windows` stopped early; None if unknown), "covered" [[start, end]] (seconds the
       windows classified), "damaged" [[start, end]] (seconds the decoder refused, skipped),
       "gaps" [[start, end]] (seconds without frames), "fps", "window", "stride", "windows",
       "frames", "frame_size", "heads", "seconds", "video_seconds_per_second"}, "damage" (one
       reason per damaged span) when there is damage, "resized" when frames were shrunk to the
       model's limits, "timeline" with `keep_windows`; {"video", "error"} when nothing could be
       read or the window does not fit the model.
    """
    heads = predictor.head_names if head is None else (head,)
    span, eval_short_side = clip_geometry(predictor, heads)
    max_short_side = None if short_side else eval_short_side
    start_time = time.perf_counter()
    summary, answers, progress, stopped = Summary(), [], None, False
    spans, names, classified = [], {}, 0
    try:
        with VideoStream(
            path, short_side=short_side, fps=fps, max_short_side=max_short_side, resume=True
        ) as stream:
            if window is None:
                # An image head classifies one frame of its clip: one window a second, not a
                # window (a model call) per frame.
                window = default_window(span, 1, stream.fps) if span > 1 else IMAGE_WINDOW_SECONDS
            stride = stride or window
            window_frames = round(window * stream.fps)
            max_frames = predictor.max_frames
            if max_frames is not None and window_frames > max_frames:
                return {
                    "video": str(path),
                    "error": f"a {window:g} s window holds {window_frames} frames at "
                    f"{stream.fps:g} fps, more than the model's max_frames={max_frames}; "
                    "use a shorter --window or a lower --fps",
                }
            limit = fit_to_limits(predictor, stream, window_frames + 1) if fit_limits else None
            progress = Progress(stream.duration, str(path))
            for clip in sliding_windows(stream, stream.fps, window, stride):
                probabilities = predictor.probabilities(clip.frames, head=head)
                for name, values in probabilities.items():
                    if name not in names:
                        names[name] = predictor.class_names(name, len(values))
                start, end = round(clip.start, 3), round(clip.end, 3)
                summary.add(probabilities, names, start, end)
                add_span(spans, start, end)
                answer = {
                    "video": str(path),
                    "window": clip.index,
                    "start": start,
                    "end": end,
                    "frames": int(clip.frames.shape[0]),
                    "heads": window_heads(probabilities, names, top),
                }
                if keep_windows:
                    answers.append(answer)
                progress.advance_to(clip.end)
                if on_window is not None:
                    on_window(answer)
                if max_windows is not None and summary.windows >= max_windows:
                    stopped, classified = True, classified + answer["frames"]
                    break
                classified += answer["frames"]
            fps_out = stream.fps
            frames = classified if stopped else stream.frames_decoded
            frame_size, unfitted_size = stream.frame_size, stream.unfitted_size
            damaged, reasons, gaps = stream.damaged, stream.damage_reasons, stream.gaps
            if stopped:
                duration = stream.duration
            else:
                duration = max([stream.end] + [end for _, end in damaged + gaps])
            resized = limit if stream.resized else None
    except VideoDecodeError as broken:
        return {"video": str(path), "error": str(broken)}
    finally:
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - start_time
    read = spans[-1][1] if spans else 0.0
    result = {
        "video": str(path),
        "summary": True,
        "duration": round(duration, 3) if duration is not None else None,
        "covered": [[round(a, 3), round(b, 3)] for a, b in subtract_spans(spans, damaged + gaps)],
        "damaged": damaged,
        "gaps": gaps,
        "fps": fps_out,
        "window": window,
        "stride": stride,
        "windows": summary.windows,
        "frames": frames,
        "frame_size": list(frame_size) if frame_size else None,
        "heads": summary.heads(top),
        "seconds": round(seconds, 3),
        "video_seconds_per_second": round(read / seconds, 3) if seconds > 0 else None,
    }
    if damaged:
        result["damage"] = reasons
    if resized is not None:
        result["resized"] = {"from": list(unfitted_size), "to": list(frame_size), "why": resized}
    if keep_windows:
        result["timeline"] = answers
    return result


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
