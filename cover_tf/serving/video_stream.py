"""Reading a video of any length in a stream: frames one at a time, windows of fixed duration.

`VideoStream` decodes with PyAV frame by frame (never the whole video in memory), optionally
resizing the short side and subsampling the frame rate like `decode_video`. `sliding_windows`
turns its frames into windows [start, start + window) every `stride` seconds, holding only the
last `window` seconds of frames, so memory is bounded by one window whatever the video's length.
Every way a file can be bad raises `VideoDecodeError` (from the builders' decoder), so callers
skip and report it with one `except`; with `resume=True` a file damaged after its first frame is
read past the damage instead, and the stream lists the seconds it could not decode (`damaged`)
and the seconds without frames (`gaps`).
"""

import collections
import dataclasses
import math

import av
import numpy as np
from etils import epath

from cover_tf.builders.video_decode import (
    DecodeFailure,
    VideoDecodeError,
    decode_resuming,
    fit_pixels,
    resized_shape,
)

# A stream that ends this far short of the frame count (or duration) in the container is truncated.
_TRUNCATION_TOLERANCE = 0.9
# More than this many seconds (and 3 frame intervals) without a frame is a gap in the video.
_GAP_SECONDS = 1.0
VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ogv", ".flv", ".wmv",
    ".3gp", ".ts",
)  # fmt: skip


def stream_rate(stream) -> float | None:
    """The frame rate the container declares for a PyAV video stream (None if it has none)."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and float(rate) > 0:
            return float(rate)
    return None


def add_span(spans: list, start: float, end: float, gap: float = 1e-6) -> None:
    """Appends [start, end] to time-ordered `spans`, merged with the last one if they touch."""
    if end <= start:
        return
    if spans and start <= spans[-1][1] + gap:
        spans[-1][1] = max(spans[-1][1], end)
    else:
        spans.append([start, end])


def subtract_spans(spans: list, holes: list) -> list:
    """`spans` ([[start, end]], sorted, disjoint) without the seconds in `holes` (same form)."""
    result = []
    for start, end in spans:
        pieces = [[start, end]]
        for hole_start, hole_end in holes:
            cut = []
            for piece_start, piece_end in pieces:
                if hole_end <= piece_start or hole_start >= piece_end:
                    cut.append([piece_start, piece_end])
                    continue
                if hole_start > piece_start:
                    cut.append([piece_start, hole_start])
                if hole_end < piece_end:
                    cut.append([hole_end, piece_end])
            pieces = cut
        result += pieces
    return result


class VideoStream:
    """A video file's RGB frames, decoded one at a time; use as a context manager.

    Frames are kept by their presentation timestamps: with a target `fps` below the source's, the
    kept frames are the first ones at or after t0 + k / fps (as `decode_video` keeps them).

    Args:
      path: a video file PyAV/FFmpeg reads (mp4/H.264, webm/VP9, avi, ...).
      short_side: resize every frame so that its shorter side has this many pixels (aspect ratio
        kept); None keeps the decoded size.
      fps: target frame rate; None (or a rate at or above the source's) keeps every frame.
      max_short_side: without `short_side`, shrink frames whose shorter side is longer than this
        to it (never enlarges); None keeps the size.
      max_pixels: then shrink frames of more than this many pixels (height x width) to fit it,
        aspect ratio kept; may be set after opening, before iterating (`resized` says if it did).
      resume: False: the first packet the decoder refuses, or a file that stops short of its
        declared length, raises VideoDecodeError (after the frames before it). True: decoding
        goes on after refused packets and the stream records what it could not read (`damaged`).

    Attributes (once opened):
      fps: the rate of the yielded frames.
      duration: the container's duration in seconds, or None when it does not say.
      frame_size: (height, width) of the yielded frames, known after the first frame.
      source_size: (height, width) of the decoded frames before any resize.
      resized: whether `max_pixels` shrank the frames; `unfitted_size` is their size before.
      frames_decoded: frames yielded so far.
      end: the end of the last yielded frame (its time + 1 / fps), 0 before the first.
      damaged: [[start, end]] seconds the decoder refused (resume=True): a refused packet's
        seconds up to the next frame decoded, and, for a file that stops short of its declared
        length, from its last frame to that length. `damage_reasons` holds one reason per span.
      gaps: [[start, end]] seconds without any frame in an otherwise readable file (a demuxer
        that dropped damaged data, or a still in a variable-frame-rate video).

    Iterating yields (seconds since the first frame, uint8 [H, W, 3]) in increasing time order.
    """

    def __init__(
        self,
        path,
        short_side: int | None = None,
        fps: float | None = None,
        *,
        max_short_side: int | None = None,
        max_pixels: int | None = None,
        resume: bool = False,
    ):
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive or None, got {fps!r}")
        for name, value in (
            ("short_side", short_side),
            ("max_short_side", max_short_side),
            ("max_pixels", max_pixels),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}")
        self.path = epath.Path(path)
        self.short_side = short_side
        self.max_short_side = max_short_side
        self.max_pixels = max_pixels
        self.target_fps = fps
        self.resume = resume
        self.container = None
        self.frame_size = None
        self.source_size = self.unfitted_size = None
        self.resized = False
        self.frames_decoded = 0
        self.end = 0.0
        self.damaged, self.damage_reasons, self.gaps = [], [], []

    def __enter__(self) -> "VideoStream":
        if not self.path.exists():
            raise VideoDecodeError(self.path, "file not found")
        if self.path.is_dir():
            raise VideoDecodeError(self.path, "is a directory")
        if self.path.stat().length == 0:
            raise VideoDecodeError(self.path, "zero-byte file")
        try:
            self.container = av.open(str(self.path), metadata_errors="ignore")
            if not self.container.streams.video:
                raise VideoDecodeError(self.path, "no video stream")
            self.stream = self.container.streams.video[0]
            self.stream.thread_type = "AUTO"
        except VideoDecodeError:
            self.close()
            raise
        except (av.FFmpegError, OSError, ValueError, IndexError, RuntimeError) as error:
            self.close()
            raise VideoDecodeError(self.path, f"{type(error).__name__}: {error}") from error
        self.source_fps = stream_rate(self.stream)
        self.subsample = self.target_fps is not None and self.source_fps is not None
        self.subsample = self.subsample and self.target_fps < self.source_fps
        self.fps = float(self.target_fps) if self.subsample else (self.source_fps or 25.0)
        duration = self.container.duration
        self.duration = float(duration) / av.time_base if duration else None
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    def __iter__(self):
        try:
            yield from self._frames()
        except VideoDecodeError:
            raise
        except (av.FFmpegError, OSError, ValueError, IndexError, RuntimeError) as error:
            if not self.resume or not self.frames_decoded:
                raise VideoDecodeError(self.path, f"{type(error).__name__}: {error}") from error
            # The container itself broke off: what follows the last frame is lost.
            self._damage(self.end, max(self.end, self._declared_end()), _reason(error))

    def _target_size(self, height: int, width: int) -> tuple[int, int]:
        self.source_size = (height, width)
        if self.short_side is not None:
            height, width = resized_shape(height, width, self.short_side)
        elif self.max_short_side is not None and min(height, width) > self.max_short_side:
            height, width = resized_shape(height, width, self.max_short_side)
        fitted = fit_pixels(height, width, self.max_pixels)
        if fitted != (height, width):
            self.resized, self.unfitted_size = True, (height, width)
        return fitted

    def _declared_end(self) -> float:
        """The length the container declares for the video (seconds; 0 when it does not say)."""
        stream_duration = self.stream.duration
        if stream_duration and self.stream.time_base:
            return float(stream_duration * self.stream.time_base)
        return self.duration or 0.0

    def _damage(self, start: float, end: float, reason: str) -> None:
        before = len(self.damaged)
        add_span(self.damaged, round(start, 3), round(end, 3))
        if len(self.damaged) > before:
            self.damage_reasons.append(reason)

    def _frames(self):
        source_fps = self.source_fps or self.fps
        slack = 0.5 / self.source_fps if self.source_fps else 0.0
        gap = max(_GAP_SECONDS, 3.0 / source_fps)
        decoder = decode_resuming(self.container, self.stream) if self.resume else None
        decoder = decoder or self.container.decode(self.stream)
        t0, next_time, decoded, last = None, 0.0, 0, None
        failures = []  # refused packets since the last frame: their times (None: unknown)
        for item in decoder:
            if isinstance(item, DecodeFailure):
                failures.append(item)
                continue
            frame = item
            decoded += 1
            t = frame.time if frame.time is not None else (decoded - 1) / source_fps
            if t0 is None:
                times = [f.time for f in failures if f.time is not None]
                t0 = min([t, *times])
            t -= t0
            if self.resume and last is not None and t < last:
                continue  # frames a decoder concealed after damage, out of order: dropped
            if failures:
                start = (last + 1.0 / source_fps) if last is not None else 0.0
                times = [f.time - t0 for f in failures if f.time is not None]
                if t <= start and times:  # nothing missing between the frames: the packets' own
                    start, t_end = min(times), max(times) + 1.0 / source_fps
                else:
                    t_end = t
                self._damage(start, t_end, failures[0].reason)
                failures = []
            elif last is not None and t - last > gap:
                add_span(self.gaps, round(last + 1.0 / source_fps, 3), round(t, 3))
            last = t
            if self.subsample:
                if t + slack < next_time:
                    continue
                next_time = (math.floor((t + slack) * self.target_fps + 1e-9) + 1) / self.target_fps
            if self.frame_size is None:
                self.frame_size = self._target_size(frame.height, frame.width)
            height, width = self.frame_size
            self.frames_decoded += 1
            self.end = t + 1.0 / self.fps
            yield t, frame.to_ndarray(format="rgb24", height=height, width=width)
        if not self.frames_decoded:
            reason = failures[0].reason if failures else "no decodable frames"
            raise VideoDecodeError(self.path, reason)
        end = (last or 0.0) + 1.0 / source_fps
        if failures:  # refused packets after the last frame: damaged to the declared end
            ends = [f.time - t0 + 1.0 / source_fps for f in failures if f.time is not None]
            self._damage(end, max([end, self._declared_end(), *ends]), failures[0].reason)
        expected = self.stream.frames
        if expected and decoded < _TRUNCATION_TOLERANCE * expected:
            reason = f"truncated: decoded {decoded} of {expected} frames"
        elif self.resume and not expected and end < _TRUNCATION_TOLERANCE * self._declared_end():
            reason = f"truncated: frames end at {end:.2f} s of {self._declared_end():.2f} s"
        else:
            return
        if not self.resume:
            raise VideoDecodeError(self.path, reason)
        self._damage(end, max(end, self._declared_end()), reason)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


@dataclasses.dataclass
class Window:
    """One window of a video: its frames in [start, end) seconds.

    Attributes:
      index: 0, 1, ... in time order.
      start, end: seconds since the first frame (the last window ends with the last frame).
      frames: uint8 [N, H, W, 3].
    """

    index: int
    start: float
    end: float
    frames: np.ndarray


def default_window(num_frames: int, frame_stride: int, fps: float) -> float:
    """Seconds one clip of the head spans: num_frames x frame_stride frames at `fps`."""
    return num_frames * max(1, frame_stride) / fps


def sliding_windows(frames, fps: float, window: float, stride: float):
    """Windows [k * stride, k * stride + window) of a stream of (time, frame), in time order.

    Holds only the frames of the last `window` seconds. Windows are emitted once complete; at the
    end, a video shorter than `window` gives one window over all of it, and when the last full
    window stops short of the end, one more window of length `window` ends at the last frame, so
    the windows always cover the whole video. A window without any frame (inside a gap or damaged
    seconds of the stream) is left out.

    Args:
      frames: iterable of (seconds, uint8 [H, W, 3]) in time order (e.g. a `VideoStream`).
      fps: the frames' rate; a frame at t lasts until t + 1 / fps.
      window, stride: seconds, both > 0.
    Yields:
      `Window`s, indexed 0, 1, ... in the order they are yielded.
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be > 0 seconds, got {window} and {stride}")
    # Timestamps jitter: a frame counts as inside [start, end) within a tenth of a frame.
    eps = 0.1 / fps
    buffer = collections.deque()
    index, step, start, last_end = 0, 0, 0.0, None

    def take(window_start, window_end):
        chosen = [frame for t, frame in buffer if window_start - eps <= t < window_end - eps]
        return np.stack(chosen) if chosen else None

    newest = None
    for t, frame in frames:
        while t >= start + window - eps:
            chosen = take(start, start + window)
            if chosen is not None:
                yield Window(index, start, start + window, chosen)
                last_end = start + window
                index += 1
            step += 1
            start = step * stride
        buffer.append((t, frame))
        newest = t
        while buffer and buffer[0][0] < newest - window - eps:
            buffer.popleft()
    if newest is None:
        return
    end = newest + 1.0 / fps
    if last_end is None and index == 0 and step == 0:
        yield Window(0, 0.0, end, take(0.0, math.inf))
    elif last_end is None or last_end < end - eps:
        tail = max(0.0, end - window)
        yield Window(index, tail, end, take(tail, math.inf))
