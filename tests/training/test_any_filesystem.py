"""A training workdir on a non-local filesystem: TF's in-memory `ram://`, in this process.

Every workdir file (config, datasets.json, backups, history, checkpoints, model, TensorBoard
logs, metrics) must go through `tf.io.gfile`: the run starts in an empty folder and that folder
stays empty, and no local path named like the workdir appears.
"""

import json
import os

import keras
import pytest
import tensorflow as tf

import cover_tf  # noqa: F401  (registers the Keras classes)
from cover_tf import workdir as workdir_layout
from cover_tf.config import load_config
from cover_tf.training import loop
from tests.training.conftest import REPO, TINY_RUN


@pytest.mark.slow  # two tiny trainings in this process: ~1-2 min on 2 cores
def test_train_and_resume_on_ram_filesystem(synthetic_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = "ram://cover_tf_test/run"
    overrides = [
        f"data_dir={synthetic_data_dir}",
        *TINY_RUN,
        "eval.max_examples=8",
        "train.steps_per_epoch=1",
        # op determinism is process-wide; this test shares its process with others
        "mixing.deterministic=false",
    ]
    demo = REPO / "configs" / "demo.yaml"
    first = loop.run(load_config(demo, [*overrides, "train.steps=2"]), root, verbose=0)
    assert first["train/steps"] == 2
    resumed = loop.run(
        load_config(demo, [*overrides, "train.steps=3"]), root, verbose=0, allow_config_change=True
    )
    assert resumed["train/epochs_resumed"] == 2 and resumed["train/steps"] == 3

    files = workdir_layout.Workdir(root)
    for path in (
        files.config,
        files.datasets,
        files.model,
        files.checkpoint,
        files.history,
        files.metrics_chart,
    ):
        assert tf.io.gfile.exists(path), path
    assert tf.io.gfile.glob(f"{files.logs}/train/events.out.tfevents.*")
    state = json.loads(tf.io.gfile.GFile(f"{files.backup}/state.json").read())
    assert state["epoch"] == 3 and state["previous"]["epoch"] == 2
    with tf.io.gfile.GFile(files.history) as history:
        assert [line.split(",")[0] for line in history.read().splitlines()[1:]] == ["0", "1", "2"]
    assert json.loads(tf.io.gfile.GFile(files.metrics).read())["train/steps"] == 3
    assert not tf.io.gfile.exists(files.lock)  # released
    model = keras.saving.load_model(files.model)
    assert model.head_classes == {"appearance": 12, "images": 24, "motion": 8}
    assert os.listdir(tmp_path) == []
    assert not os.path.exists("/cover_tf_test") and not os.path.exists("ram:")
