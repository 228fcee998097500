"""`python -m cover_tf.train` end to end on the embedded synthetic datasets (tiny model)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import matplotlib.image
import pytest

import cover_tf  # noqa: F401  (registers the Keras classes)
from cover_tf import train
from tests.training.conftest import REPO, run_train, train_command


def test_train_writes_a_complete_workdir(tmp_path, synthetic_data_dir):
    workdir = tmp_path / "run"
    metrics = run_train(workdir, synthetic_data_dir, "train.steps=20", "train.steps_per_epoch=10")
    for name in ("appearance", "motion", "images"):
        assert 0.0 <= metrics[f"{name}/top1"] <= metrics[f"{name}/top5"] <= 1.0
        assert metrics[f"{name}/num_examples"] == 40
    assert metrics["train/steps"] == 20
    model = keras.saving.load_model(workdir / "model.keras")
    assert model.head_classes == {"appearance": 12, "images": 24, "motion": 8}
    datasets = json.loads((workdir / "datasets.json").read_text())
    assert datasets["motion"]["class_names"][0] == "left_to_right"
    assert datasets["motion"]["eval"]["flip"] is False
    rows = list(csv.DictReader((workdir / "history.csv").open()))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert {"motion_top1", "images_loss", "steps_per_s"} <= set(rows[0])
    assert (workdir / "config.yaml").is_file() and any((workdir / "logs").iterdir())
    # metrics.png: the accuracy panel and, beside it, the training curves (twice as wide).
    height, width, _ = matplotlib.image.imread(workdir / "metrics.png").shape
    assert width > 2 * height


def test_bad_config_key_fails_before_training(tmp_path, synthetic_data_dir):
    result = subprocess.run(
        train_command(tmp_path / "run", synthetic_data_dir, "train.stepz=3"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train: error: unknown config key train.'stepz'")
    assert not (tmp_path / "run").exists()


def run_train_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "cover_tf.train", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def test_unprepared_own_folder_names_the_build_command(tmp_path):
    """configs/own_videos.yaml before its step 2: one sentence with the command that prepares the
    folder, and no workdir."""
    result = run_train_cli(
        "--config",
        REPO / "configs" / "own_videos.yaml",
        "--set",
        f"data_dir={tmp_path / 'data'}",
        "--workdir",
        tmp_path / "run",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("train: error: datasets.videos: video_folder is not prepared in ")
    assert lines[0].endswith(
        f"python -m cover_tf.builders.build video_folder --manual_dir <its files> "
        f"--data_dir {tmp_path / 'data'}"
    )
    assert not (tmp_path / "run").exists()


def lambda_model(path):
    """A Keras model holding a Python lambda (a Lambda layer), saved as `.keras`."""
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: 2 * x)(inputs)).save(path)
    return path


def test_an_init_checkpoint_keras_refuses_is_one_sentence(tmp_path, synthetic_data_dir):
    """Keras' safe mode refuses a Lambda layer's Python code (rightly); a model of another kind
    has no CoVeR backbone. Both are told before the workdir is written."""
    other = tmp_path / "dense.keras"
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(other)
    cases = {
        lambda_model(tmp_path / "lambda.keras"): "holds Python code (a Lambda layer), which "
        "Keras' safe mode refuses to load; give a model saved by cover_tf (train, convert)",
        other: "holds a Keras Functional, not a CoVeR model; python -m cover_tf.convert makes "
        "one from a ViT or TimeSformer checkpoint",
        tmp_path / "absent.keras": "does not exist",
    }
    for checkpoint, message in cases.items():
        result = subprocess.run(
            train_command(
                tmp_path / "run", synthetic_data_dir, f"model.init_checkpoint={checkpoint}"
            ),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
        )
        assert result.returncode == 2, result.stderr[-2000:]
        expected = f"train: error: model.init_checkpoint '{checkpoint}' {message}"
        assert result.stderr.strip().splitlines() == [expected], result.stderr
        assert not (tmp_path / "run").exists()


def test_an_unexpected_error_is_one_sentence_and_verbose_shows_it(tmp_path, monkeypatch, capsys):
    """Whatever goes wrong inside the run (here: a failure the code did not foresee) ends in one
    line and exit status 2; --verbose adds the traceback."""
    config = tmp_path / "demo.yaml"
    config.write_text((REPO / "configs" / "demo.yaml").read_text())

    def broken_run(*args, **kwargs):
        raise RuntimeError("the accelerator fell off the bus\nsecond line")

    monkeypatch.setattr(train, "check_inputs", lambda config: None)
    monkeypatch.setattr(train.loop, "run", broken_run)
    assert train.main(["--config", str(config), "--workdir", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == (
        "train: error: the accelerator fell off the bus (--verbose shows the traceback)\n"
    )
    assert train.main(["--config", str(config), "--verbose"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "broken_run" in err
    assert err.splitlines()[-1] == "train: error: the accelerator fell off the bus"


def test_killed_run_resumes_to_the_same_result(tmp_path, synthetic_data_dir):
    overrides = ("train.steps=40", "train.steps_per_epoch=10", "model.drop_path_rate=0.0")
    reference = run_train(tmp_path / "uninterrupted", synthetic_data_dir, *overrides)

    workdir = tmp_path / "interrupted"
    process = subprocess.Popen(
        train_command(workdir, synthetic_data_dir, *overrides),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    metadata = workdir / "backup" / "state.json"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and process.poll() is None:
        if metadata.is_file() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 2:
            break
        time.sleep(0.2)
    if process.poll() is not None:
        pytest.fail("the run ended before it could be killed mid-training")
    time.sleep(0.5)  # into the third epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (workdir / "metrics.json").exists()

    resumed = run_train(workdir, synthetic_data_dir, *overrides)
    assert resumed["train/epochs_resumed"] >= 2
    assert resumed["train/steps"] == reference["train/steps"] == 40
    for name in ("appearance", "motion", "images"):
        assert resumed[f"{name}/top1"] == reference[f"{name}/top1"]
        assert resumed[f"{name}/top5"] == reference[f"{name}/top5"]
    # mixing.deterministic (the demo's) turns TF op determinism on: two fresh runs with one seed
    # give the same first loss bit for bit, and so does the resumed run's last epoch.
    ours, theirs = epoch_losses(workdir), epoch_losses(tmp_path / "uninterrupted")
    assert sorted(ours) == sorted(theirs) == ["0", "1", "2", "3"]
    assert ours["0"] == theirs["0"] and ours["3"] == theirs["3"]


def epoch_losses(workdir):
    """{epoch: loss as written} of a history.csv (a redone epoch's last row)."""
    return {row["epoch"]: row["loss"] for row in csv.DictReader((workdir / "history.csv").open())}


def test_mirrored_strategy_over_two_logical_cpus(tmp_path, synthetic_data_dir):
    command = train_command(
        tmp_path / "run",
        synthetic_data_dir,
        "train.steps=10",
        "train.steps_per_epoch=5",
        "train.strategy=mirrored",
    )
    command[1:3] = [str(REPO / "tests" / "training" / "logical_cpus_train.py")]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train/replicas"] == 2
    assert metrics["train/steps"] == 10
    assert all(0.0 <= metrics[f"{name}/top1"] <= 1.0 for name in ("appearance", "motion", "images"))
