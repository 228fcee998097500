"""Each precision `train.precision` offers, through the commands a user types: the demo config
trains a few steps with its own `xla_one_frame` (on), `python -m cover_tf.export --workdir`
exports it (its self-check with the compute dtype's tolerance), and the SavedModel serves every
signature in a process that cannot import cover_tf.

The tiny sizes of `TINY_RUN` keep each precision to about a minute and a half on 2 cores; on a CPU
without native bfloat16 the trainer runs `mixed_bfloat16` as float32 (`training/precision.py`),
which the metadata's compute dtype shows.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cover_tf.serving.exporter import METADATA_FILE
from cover_tf.training.precision import effective_precision
from tests.serving.test_precision_export import serve_without_cover_tf
from tests.training.conftest import REPO, run_train

COMPUTE_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_demo_trains_exports_and_serves(precision, synthetic_data_dir, tmp_path):
    workdir, out = tmp_path / "run", tmp_path / "export"
    metrics = run_train(
        workdir,
        synthetic_data_dir,
        f"train.precision={precision}",
        "train.xla_one_frame=true",  # the demo's own setting (TINY_RUN turns it off)
        "train.steps=6",
        "train.steps_per_epoch=3",
    )
    assert metrics["train/steps"] == 6

    result = subprocess.run(
        [sys.executable, "-m", "cover_tf.export", "--workdir", str(workdir), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (version,) = [path for path in out.iterdir() if path.name.isdigit()]
    metadata = json.loads((version / METADATA_FILE).read_text())
    expected = COMPUTE_DTYPES[effective_precision(precision)]
    assert metadata["self_check"]["compute_dtype"] == expected
    assert metadata["self_check"]["max_abs_diff"] is not None

    frames = np.random.default_rng(0).integers(0, 256, (1, 4, 40, 48, 3), dtype=np.uint8)
    outputs, dtypes = serve_without_cover_tf(version, frames, tmp_path)
    loaded = tf.saved_model.load(str(version))
    assert {key.split("/")[0] for key in outputs} == set(loaded.signatures)
    for key, value in outputs.items():
        if dtypes[key].startswith("float"):
            assert dtypes[key] == "float32", key  # logits and probabilities stay float32
            assert np.all(np.isfinite(value)), key
