"""`python -m cover_tf.evaluate` on a real tiny training workdir: metrics JSON, views, chart."""

import json
import os
import subprocess
import sys
import uuid

import keras
import matplotlib.image
import pytest
import tensorflow as tf

from cover_tf import evaluate
from cover_tf.workdir import Workdir
from tests.training.conftest import REPO, run_train

HEADS = ("appearance", "motion", "images")


@pytest.fixture(scope="module")
def tiny_workdir(tmp_path_factory, synthetic_data_dir):
    workdir = tmp_path_factory.mktemp("evaluate") / "run"
    run_train(workdir, synthetic_data_dir, "train.steps=10", "train.steps_per_epoch=5")
    return workdir


def run_evaluate(*args):
    return subprocess.run(
        [sys.executable, "-m", "cover_tf.evaluate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def test_evaluate_overrides_views_and_writes_metrics_and_chart(tiny_workdir, tmp_path):
    out, chart = tmp_path / "metrics.json", tmp_path / "eval.png"
    result = run_evaluate(
        "--workdir",
        str(tiny_workdir),
        "--clips",
        "2",
        "--crops",
        "3",
        "--max-examples",
        "16",
        "--out",
        str(out),
        "--chart",
        str(chart),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed == json.loads(out.read_text())
    for head in HEADS:
        assert 0.0 <= printed[f"{head}/top1"] <= printed[f"{head}/top5"] <= 1.0
        assert printed[f"{head}/num_examples"] == 16
    # Videos: clips x crops views; images (one frame) get the crops only.
    assert printed["appearance/views"] == printed["motion/views"] == 2 * 3
    assert printed["images/views"] == 3
    image = matplotlib.image.imread(chart)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    # Two panels (accuracy + history.csv curves) side by side.
    assert image.shape[0] > 200 and image.shape[1] > 2 * image.shape[0]


def test_evaluate_defaults_to_the_config_views_and_the_workdir(tiny_workdir, capsys):
    assert evaluate.main(["--workdir", str(tiny_workdir), "--max-examples", "8"]) == 0
    metrics = json.loads((tiny_workdir / "eval_metrics.json").read_text())
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == metrics
    # configs/demo.yaml evaluates 1 clip x 1 crop.
    assert {metrics[f"{head}/views"] for head in HEADS} == {1}
    assert matplotlib.image.imread(tiny_workdir / "eval.png").shape[0] > 200


def test_evaluate_reads_and_writes_a_url_workdir(tiny_workdir, capsys):
    """A workdir on a `tf.io.gfile` filesystem (TF's in-process `ram://` standing in for `gs://`,
    which this machine cannot reach): config, model and history read from it, metrics and chart
    written to it."""
    local, remote = Workdir(str(tiny_workdir)), Workdir(f"ram://evaluate-{uuid.uuid4().hex}")
    tf.io.gfile.makedirs(remote.root)
    for name in ("config", "model", "history"):
        tf.io.gfile.copy(getattr(local, name), getattr(remote, name))
    assert evaluate.main(["--workdir", remote.root, "--max-examples", "8"]) == 0
    with tf.io.gfile.GFile(remote.eval_metrics) as file:
        metrics = json.load(file)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == metrics
    assert {metrics[f"{head}/num_examples"] for head in HEADS} == {8}
    with tf.io.gfile.GFile(remote.eval_chart, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_missing_workdir_files_are_a_clear_error(tmp_path, capsys):
    assert evaluate.main(["--workdir", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == (
        f"evaluate: error: workdir '{tmp_path / 'nowhere'}' has no config.yaml\n"
    )
    (tmp_path / "config.yaml").write_text("name: x\n")
    assert evaluate.main(["--workdir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"evaluate: error: no model file at '{tmp_path / 'model.keras'}'\n"
    )
    (tmp_path / "model.keras").write_bytes(b"")
    (tmp_path / "config.yaml").write_text("- not a mapping\n")
    assert evaluate.main(["--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evaluate: error: ") and err.count("\n") == 1
    assert "config.yaml: the top level must be a mapping" in err


def test_a_model_file_keras_refuses_is_one_sentence(tiny_workdir, tmp_path, capsys):
    """A `.keras` holding a Lambda layer (Python code: Keras' safe mode refuses it, rightly), a
    truncated one and one of another kind: one line each, the traceback only with --verbose."""
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: 2 * x)(inputs)).save(tmp_path / "l.keras")
    keras.Model(inputs, keras.layers.Dense(3)(inputs)).save(tmp_path / "dense.keras")
    data = (tiny_workdir / "model.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    cases = {
        "l.keras": "holds Python code (a Lambda layer), which Keras' safe mode refuses to load; "
        "give a model saved by cover_tf (train, convert)",
        "cut.keras": "is not a .keras archive (truncated, or another format)",
        "dense.keras": "holds a Keras Functional, not a CoVeR model; python -m cover_tf.convert "
        "makes one from a ViT or TimeSformer checkpoint",
    }
    for name, message in cases.items():
        path = tmp_path / name
        assert evaluate.main(["--workdir", str(tiny_workdir), "--checkpoint", str(path)]) == 2
        assert capsys.readouterr().err == f"evaluate: error: the model file '{path}' {message}\n"
    args = ["--workdir", str(tiny_workdir), "--checkpoint", str(tmp_path / "l.keras")]
    assert evaluate.main([*args, "--verbose"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("evaluate: error: the model")


def test_a_bad_option_is_one_sentence(capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--workdir", "w", "--clips", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "evaluate: error: --clips must be >= 1, got 0\n"
