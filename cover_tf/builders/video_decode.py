"""Decoding video files into uint8 frames with PyAV: short-side resize and fps subsampling.

Used by the dataset builders (decode once, store JPEG frames) and by `predict` (raw files).
Every way a file can be bad (missing, empty, truncated, undecodable, no frames) raises
`VideoDecodeError`, so callers can skip and report it with one `except`. `decode_resuming` is the
other policy, for readers that report damage instead of refusing the file (`predict` streams):
a packet the decoder refuses is reported in place and decoding goes on with the next one.
"""

import dataclasses
import math

import av
import numpy as np
from etils import epath

# A decoded stream that stops this far short of the frame count in the container is truncated.
_TRUNCATION_TOLERANCE = 0.9


class VideoDecodeError(Exception):
    """A video file that cannot be decoded.

    Args:
      path: the file.
      reason: what is wrong with it, in words ("zero-byte file", "truncated: ...").
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path!r}: {reason}")


def resized_shape(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(height, width) with the shorter side equal to `short_side`, aspect ratio kept.

    Both sides are rounded to the nearest integer and are at least 1. `None` keeps the size.
    """
    if short_side is None:
        return height, width
    if short_side <= 0:
        raise ValueError(f"short_side must be positive or None, got {short_side!r}")
    scale = short_side / min(height, width)
    if height <= width:
        return short_side, max(1, round(width * scale))
    return max(1, round(height * scale)), short_side


def fit_pixels(height: int, width: int, max_pixels: int | None) -> tuple[int, int]:
    """The largest (height, width) of the same aspect ratio with height x width <= max_pixels.

    Sizes already within the limit (or `max_pixels` None) are returned unchanged; both sides are
    at least 1.
    """
    if max_pixels is None or height * width <= max_pixels:
        return height, width
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1 or None, got {max_pixels!r}")
    scale = math.sqrt(max_pixels / (height * width))
    fitted_height = max(1, math.floor(height * scale))
    fitted_width = max(1, math.floor(width * scale))
    while fitted_height * fitted_width > max_pixels:  # a side held at 1 pixel
        if fitted_width >= fitted_height:
            fitted_width -= 1
        else:
            fitted_height -= 1
    return fitted_height, fitted_width


@dataclasses.dataclass(frozen=True)
class DecodeFailure:
    """A packet the decoder refused (damaged data), yielded by `decode_resuming` in its place.

    Attributes:
      time: the packet's presentation time in seconds (its decoding time when it has none; None
        when it has neither).
      reason: the decoder's error, in words.
    """

    time: float | None
    reason: str


def decode_resuming(container, stream):
    """Yields the decoded `av.VideoFrame`s of `stream` and a `DecodeFailure` for every packet the
    decoder refuses; decoding goes on with the next packet (the codec recovers at the next frame
    it can decode, at the latest the next keyframe).

    A file damaged in its middle then gives its frames before and after the damage instead of
    ending there (`container.decode` stops at the first refused packet). Errors of the container
    itself (the demuxer) still raise.
    """
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except (av.FFmpegError, ValueError) as error:
            stamp = packet.pts if packet.pts is not None else packet.dts
            time = (
                float(stamp * packet.time_base) if stamp is not None and packet.time_base else None
            )
            yield DecodeFailure(time, f"{type(error).__name__}: {error}")
            continue
        yield from frames


def _source_fps(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and float(rate) > 0:
            return float(rate)
    return None


def decode_video(
    path,
    *,
    short_side: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
) -> tuple[np.ndarray, float]:
    """Decodes a video file into RGB frames.

    Frames are kept by their presentation timestamps: with a target `fps` below the source's,
    the kept frames are the first ones at or after t0 + k / fps (k = 0, 1, ...), so the count is
    about duration * fps. A target at or above the source fps keeps every frame (never upsamples).

    Args:
      path: a video file PyAV/FFmpeg reads (mp4/H.264, webm/VP9, avi, ...).
      short_side: resize so that the shorter side has this many pixels (aspect ratio kept);
        None keeps the decoded size.
      fps: target frame rate; None keeps the source's.
      max_frames: stop after this many output frames; None decodes to the end.

    Returns:
      frames: uint8 [T, H, W, 3], RGB.
      fps_out: the frame rate of the returned frames (the target, or the source's when the
        target is None or not below it).

    Raises:
      VideoDecodeError: missing, zero-byte, truncated, undecodable or zero-frame file.
      ValueError: invalid `short_side`, `fps` or `max_frames`.
    """
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive or None, got {fps!r}")
    if max_frames is not None and max_frames <= 0:
        raise ValueError(f"max_frames must be positive or None, got {max_frames!r}")
    path = epath.Path(path)
    if not path.exists():
        raise VideoDecodeError(path, "file not found")
    if path.is_dir():
        raise VideoDecodeError(path, "is a directory")
    if path.stat().length == 0:
        raise VideoDecodeError(path, "zero-byte file")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return _decode_container(container, path, short_side, fps, max_frames)
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError, RuntimeError) as error:
        raise VideoDecodeError(path, f"{type(error).__name__}: {error}") from error


def _decode_container(container, path, short_side, fps, max_frames) -> tuple[np.ndarray, float]:
    if not container.streams.video:
        raise VideoDecodeError(path, "no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    source_fps = _source_fps(stream)
    subsample = fps is not None and source_fps is not None and fps < source_fps
    fps_out = float(fps) if subsample else source_fps
    # Half a source frame of slack, so that jittery timestamps do not skip a target time.
    slack = 0.5 / source_fps if source_fps else 0.0

    frames, size, t0 = [], None, None
    decoded = 0
    for frame in container.decode(stream):
        decoded += 1
        if subsample:
            t = frame.time if frame.time is not None else (decoded - 1) / source_fps
            if t0 is None:
                t0 = t
            if t - t0 + slack < len(frames) / fps:
                continue
        if size is None:
            size = resized_shape(frame.height, frame.width, short_side)
        frames.append(frame.to_ndarray(format="rgb24", height=size[0], width=size[1]))
        if max_frames is not None and len(frames) >= max_frames:
            break
    if not frames:
        raise VideoDecodeError(path, "no decodable frames")
    complete = max_frames is None or len(frames) < max_frames
    expected = stream.frames
    if complete and expected and decoded < _TRUNCATION_TOLERANCE * expected:
        raise VideoDecodeError(path, f"truncated: decoded {decoded} of {expected} frames")
    if fps_out is None:  # No rate in the container: estimate it from the timestamps.
        duration = float(container.duration or 0) / av.time_base
        fps_out = decoded / duration if duration > 0 else 25.0
    return np.stack(frames), float(fps_out)
