"""The embedded synthetic datasets, prepared once per test session, and a tiny-run helper."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from cover_tf.builders import registry

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY_RUN = [
    "model.hidden_size=32",
    "model.num_layers=1",
    "model.num_heads=2",
    "model.num_frames=4",
    "datasets.appearance.num_frames=4",
    "datasets.motion.num_frames=4",
    "mixing.video_batch_size=8",
    "mixing.image_batch_size=16",
    "optimizer.warmup_steps=2",
    "eval.max_examples=40",
    # As demo.yaml: no whole-step XLA (the resume / multi-worker equalities are shown without it).
    "train.jit_compile=false",
    # Nor the optimizer update's XLA compile (~4 s a run); tests/training/
    # test_fused_updates.py shows it trains like Keras' own update.
    "optimizer.xla_update=false",
    # Nor the image batches' (demo.yaml's `train.xla_one_frame`; tests/training/test_trainer.py
    # shows that step trains like the TF-kernel one).
    "train.xla_one_frame=false",
]


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    for config in ("appearance", "motion", "images"):
        registry.get_builder(
            f"cover_synthetic/{config}", data_dir=str(data_dir)
        ).download_and_prepare()
    return data_dir


def train_command(workdir, data_dir, *overrides):
    return [
        sys.executable,
        "-m",
        "cover_tf.train",
        "--config",
        str(REPO / "configs" / "demo.yaml"),
        "--workdir",
        str(workdir),
        "--set",
        f"data_dir={data_dir}",
        *[arg for item in (*TINY_RUN, *overrides) for arg in ("--set", item)],
    ]


def run_train(workdir, data_dir, *overrides, timeout=600):
    result = subprocess.run(
        train_command(workdir, data_dir, *overrides),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((pathlib.Path(workdir) / "metrics.json").read_text())
