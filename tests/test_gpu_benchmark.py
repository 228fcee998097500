"""`benchmarks/gpu_throughput.py` runs end to end (on the CPU, tiny config), so that a lent GPU
machine's minutes are not spent finding a broken script. Its timings are not asserted."""

import json
import os
import pathlib
import re
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_throughput.py"


def run_script(*args, backend="jax"):
    environment = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=environment, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def test_measures_ours_and_the_peer_and_reports_ratios(tmp_path):
    out, table = tmp_path / "run.jsonl", tmp_path / "run.md"
    done = run_script(
        "--configs", "tiny", "--modes", "train,infer", "--device", "cpu", "--peer", "--steps",
        "1", "--warmup", "0", "--repeats", "1", "--out", str(out), "--markdown", str(table),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    machine = lines[0]
    assert machine["kind"] == "machine" and machine["device_kind"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", machine["date"]) and "commit" in machine
    measurements = [line for line in lines if line["kind"] == "measurement"]
    assert {(m["impl"], m["mode"]) for m in measurements} == {
        (impl, mode) for impl in ("cover_tf", "hf_peer") for mode in ("train", "infer")
    }
    for measurement in measurements:
        assert "error" not in measurement, measurement
        assert measurement["clips_per_s"] > 0 and measurement["step_ms"] > 0
    ratios = [line for line in lines if line["kind"] == "ratio"]
    assert {r["mode"] for r in ratios} == {"train", "infer"}
    for ratio in ratios:
        ours = next(
            m for m in measurements if m["impl"] == "cover_tf" and m["mode"] == ratio["mode"]
        )
        assert ratio["ours_clips_per_s"] == ours["clips_per_s"]
    rows = table.read_text().splitlines()[2:]
    assert [row.split(" | ")[:4] for row in rows] == [
        ["| tiny", "2", "train", "bf16"],
        ["| tiny", "2", "infer", "bf16"],
    ]

    replay = run_script("--table-from", str(out))
    assert replay.returncode == 0 and replay.stdout == table.read_text()


def test_refuses_to_run_off_the_jax_backend():
    done = run_script("--configs", "tiny", "--device", "cpu", backend="tensorflow")
    assert done.returncode != 0
    assert done.stderr.startswith("gpu_throughput.py: error: set KERAS_BACKEND=jax")


def test_peer_without_torch_ends_with_one_sentence(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import sys; sys.modules['torch'] = None\n")
    environment = dict(
        os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(tmp_path)
    )
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--configs", "tiny", "--device", "cpu", "--peer"],
        env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("gpu_throughput.py: error: --peer") and "cannot import torch" in line
