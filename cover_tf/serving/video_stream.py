"""Reading a video of any length in a stream: frames one at a time, windows of fixed duration.

`VideoStream` decodes with PyAV frame by frame (never the whole video in memory), optionally
resizing the short side and subsampling the frame rate like `decode_video`. `sliding_windows`
turns its frames into windows [start, start + window) every `stride` seconds, holding only the
last `window` seconds of frames, so memory is bounded by one window whatever the video's length.
Every way a file can be bad raises `VideoDecodeError` (from the builders' decoder), so callers
skip and report it with one `except`.
"""

import collections
import dataclasses
import math

import av
import numpy as np
from etils import epath

from cover_tf.builders.video_decode import VideoDecodeError, resized_shape

# A stream that ends this far short of the frame count in the container is truncated.
_TRUNCATION_TOLERANCE = 0.9
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


class VideoStream:
    """A video file's RGB frames, decoded one at a time; use as a context manager.

    Frames are kept by their presentation timestamps: with a target `fps` below the source's, the
    kept frames are the first ones at or after t0 + k / fps (as `decode_video` keeps them).

    Args:
      path: a video file PyAV/FFmpeg reads (mp4/H.264, webm/VP9, avi, ...).
      short_side: resize every frame so that its shorter side has this many pixels (aspect ratio
        kept); None keeps the decoded size.
      fps: target frame rate; None (or a rate at or above the source's) keeps every frame.

    Attributes (once opened):
      fps: the rate of the yielded frames.
      duration: the container's duration in seconds, or None when it does not say.
      frame_size: (height, width) of the yielded frames, known after the first frame.

    Iterating yields (seconds since the first frame, uint8 [H, W, 3]); a file that stops short of
    its declared frame count raises VideoDecodeError after its last frame.
    """

    def __init__(self, path, short_side: int | None = None, fps: float | None = None):
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive or None, got {fps!r}")
        if short_side is not None and short_side <= 0:
            raise ValueError(f"short_side must be positive or None, got {short_side!r}")
        self.path = epath.Path(path)
        self.short_side = short_side
        self.target_fps = fps
        self.container = None
        self.frame_size = None

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
            raise VideoDecodeError(self.path, f"{type(error).__name__}: {error}") from error

    def _frames(self):
        slack = 0.5 / self.source_fps if self.source_fps else 0.0
        t0, kept, decoded = None, 0, 0
        for frame in self.container.decode(self.stream):
            decoded += 1
            if frame.time is not None:
                t = frame.time
            else:
                t = (decoded - 1) / (self.source_fps or self.fps)
            if t0 is None:
                t0 = t
            if self.subsample and t - t0 + slack < kept / self.target_fps:
                continue
            if self.frame_size is None:
                self.frame_size = resized_shape(frame.height, frame.width, self.short_side)
            height, width = self.frame_size
            kept += 1
            yield t - t0, frame.to_ndarray(format="rgb24", height=height, width=width)
        if not kept:
            raise VideoDecodeError(self.path, "no decodable frames")
        expected = self.stream.frames
        if expected and decoded < _TRUNCATION_TOLERANCE * expected:
            raise VideoDecodeError(self.path, f"truncated: decoded {decoded} of {expected} frames")


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
    the windows always cover the whole video.

    Args:
      frames: iterable of (seconds, uint8 [H, W, 3]) in time order (e.g. a `VideoStream`).
      fps: the frames' rate; a frame at t lasts until t + 1 / fps.
      window, stride: seconds, both > 0.
    Yields:
      `Window`s.
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be > 0 seconds, got {window} and {stride}")
    # Timestamps jitter: a frame counts as inside [start, end) within a tenth of a frame.
    eps = 0.1 / fps
    buffer = collections.deque()
    index, start, last_end = 0, 0.0, None

    def take(window_start, window_end):
        chosen = [frame for t, frame in buffer if window_start - eps <= t < window_end - eps]
        return np.stack(chosen)

    newest = None
    for t, frame in frames:
        while t >= start + window - eps:
            yield Window(index, start, start + window, take(start, start + window))
            last_end = start + window
            index += 1
            start = index * stride
        buffer.append((t, frame))
        newest = t
        while buffer and buffer[0][0] < newest - window - eps:
            buffer.popleft()
    if newest is None:
        return
    end = newest + 1.0 / fps
    if last_end is None:
        yield Window(0, 0.0, end, take(0.0, math.inf))
    elif last_end < end - eps:
        tail = max(0.0, end - window)
        yield Window(index, tail, end, take(tail, math.inf))
