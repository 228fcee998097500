"""`benchmarks/cotrain.py --smoke` runs the whole study end to end (every setting, control and
transfer, one seed, a few steps of a 1-layer model) and writes its JSON, markdown and PNG. The
accuracies of so short a run mean nothing; the test checks that every run happened and fed the
tables. Minutes on 2 cores (it builds the synthetic data and traces 14 trainings): slow."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smoke_study_writes_every_table(tmp_path):
    out = tmp_path / "study"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "cotrain.py"), "--smoke", "--out", str(out),
         "--set", f"data_dir={tmp_path / 'tfds'}", "--set", "model.hidden_size=32",
         "--set", "model.num_layers=1", "--set", "model.num_heads=2"],
        capture_output=True, text=True, timeout=3000, cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    study = json.loads((out / "study.json").read_text())
    assert study["date"] and "commit" in study  # where and on what the study ran
    assert {"cpu_model", "cores", "isa", "machine", "tensorflow"} <= set(study["machine"])
    runs = {row["run"] for row in study["runs"]}
    assert {"appearance", "motion", "images", "videos", "cover_video", "cover_total"} <= runs
    assert {
        "motion_space_only",
        "motion_single_frame",
        "motion_frame_wise",
        "transfer_cover_video_to_motion",
    } <= runs
    cover = next(row for row in study["runs"] if row["run"] == "cover_video")
    alone = next(row for row in study["runs"] if row["run"] == "motion")
    assert cover["total_steps"] > alone["total_steps"]  # image batches on top of the video ones
    assert 0 <= alone["motion/top1_shuffled_time"] <= 1
    transfer = next(row for row in study["runs"] if row["run"] == "transfer_appearance_to_motion")
    assert transfer["init_from"] == "appearance" and "motion/top1" in transfer
    text = (out / "study.md").read_text()
    assert "| CoVeR (appearance + motion + images) | equal total |" in text
    assert "n/a (1 seed)" in text  # one seed: no interval is claimed
    assert (out / "study.png").read_bytes()[:4] == b"\x89PNG"
