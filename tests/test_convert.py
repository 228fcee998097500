"""`python -m cover_tf.convert` end to end: a real subprocess, real checkpoints, a .keras file out."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch

import cover_tf  # noqa: F401  (registers the Keras classes for load_model)
from tests.models.reference_models import clips, hf_timesformer, hf_vit, to_torch_layout

pytestmark = pytest.mark.reference


def run_convert(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "cover_tf.convert", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_converts_hf_timesformer_to_keras_matching_logits(tmp_path):
    reference = hf_timesformer(tmp_path / "hf", num_frames=2, num_labels=5, seed=7)
    out = tmp_path / "k400.keras"
    result = run_convert("--checkpoint", tmp_path / "hf", "--head", "k400", "--out", out)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["kind"] == "timesformer" and summary["heads"] == {"k400": 5}
    model = keras.saving.load_model(out)
    frames = clips(2, 2, 32, seed=1)
    with torch.no_grad():
        expected = reference(pixel_values=to_torch_layout(frames)).logits.numpy()
    np.testing.assert_allclose(model(frames)["k400"].numpy(), expected, atol=1e-4, rtol=0)


def test_cli_inflates_vit_with_new_heads(tmp_path):
    hf_vit(tmp_path / "vit")
    out = tmp_path / "init.keras"
    result = run_convert(
        "--checkpoint",
        tmp_path / "vit",
        "--heads",
        "k400=400,ssv2=174",
        "--num-frames",
        "8",
        "--image-size",
        "48",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    model = keras.saving.load_model(out)
    assert model.head_classes == {"k400": 400, "ssv2": 174}
    assert model.backbone.num_frames == 8 and model.backbone.image_size == 48
    assert model.backbone.pixel_mean == (0.5, 0.5, 0.5)


def one_error_line(result) -> str:
    """The one line `convert: error: <sentence>` a refused conversion prints (exit status 2)."""
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convert: error: "), result.stderr[-2000:]
    assert not result.stdout
    return lines[0]


def test_cli_errors_are_clear(tmp_path):
    out = tmp_path / "x.keras"
    line = one_error_line(run_convert("--checkpoint", tmp_path / "nothing", "--out", out))
    assert "config.json" in line
    hf_vit(tmp_path / "vit")
    line = one_error_line(run_convert("--checkpoint", tmp_path / "vit", "--out", out))
    assert "an image checkpoint needs --heads NAME=NUM_CLASSES" in line
    line = one_error_line(
        run_convert("--checkpoint", tmp_path / "vit", "--heads", "k400", "--out", out)
    )
    assert "NAME=NUM_CLASSES" in line
    # --out is checked before the conversion: a folder, a path under a file.
    (tmp_path / "folder.keras").mkdir()
    line = one_error_line(
        run_convert(
            "--checkpoint", tmp_path / "vit", "--heads", "a=2", "--out", tmp_path / "folder.keras"
        )
    )
    assert line == f"convert: error: --out '{tmp_path / 'folder.keras'}' is a folder, not a file"
    (tmp_path / "file").write_text("x\n")
    line = one_error_line(
        run_convert(
            "--checkpoint",
            tmp_path / "vit",
            "--heads",
            "a=2",
            "--out",
            tmp_path / "file" / "x.keras",
        )
    )
    assert line.endswith(f"cannot be created: '{tmp_path / 'file'}' is a file")
    assert not out.exists()
