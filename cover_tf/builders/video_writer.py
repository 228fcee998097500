"""Writing small real video files with PyAV: dummy data for the builders' tests, test fixtures."""

import fractions

import av
import numpy as np
from etils import epath

# Container by file suffix -> (codec, pixel format).
CODECS = {
    ".mp4": ("libx264", "yuv420p"),
    ".webm": ("libvpx-vp9", "yuv420p"),
    ".avi": ("mpeg4", "yuv420p"),
}


def write_video(path, frames: np.ndarray, fps: float = 8.0, *, faststart: bool = False) -> None:
    """Encodes uint8 RGB frames [T, H, W, 3] (H, W even) to `path`; codec from the suffix.

    `.mp4` is H.264, `.webm` VP9, `.avi` MPEG-4 part 2. `faststart` puts the mp4 index first
    (a truncated copy then still opens and decodes partially, the hard case to detect).
    """
    path = epath.Path(path)
    if path.suffix not in CODECS:
        raise ValueError(f"unsupported suffix {path.suffix!r}; expected one of {sorted(CODECS)}")
    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got shape {frames.shape}")
    codec, pix_fmt = CODECS[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart and path.suffix == ".mp4" else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=fractions.Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "28", "preset": "veryfast"}
        elif codec == "libvpx-vp9":
            stream.options = {"crf": "40", "b": "0", "deadline": "realtime", "cpu-used": "8"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def moving_square_clip(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 [T, H, W, 3]: a coloured square crossing a gradient; distinct per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), 0 * x], -1)
    frames = np.repeat(base[None].astype(np.uint8), num_frames, axis=0)
    colour = rng.integers(0, 256, 3, dtype=np.uint8)
    side = max(2, min(height, width) // 3)
    for t in range(num_frames):
        left = (t * max(1, (width - side) // max(num_frames - 1, 1))) % max(width - side, 1)
        top = (height - side) // 2
        frames[t, top : top + side, left : left + side] = colour
    return frames
