"""Two `python -m cover_tf.train` workers under MultiWorkerMirroredStrategy on loopback (CPU).

Both workers get one TF_CONFIG cluster of two 127.0.0.1 ports and one shared workdir: the chief
(worker 0) writes the workdir, worker 1 its copies under `worker_1/`. They must train in step
(same steps, bitwise-identical weights: the gradients are all-reduced and each worker applies
the same update) and agree with a single-process run of the same config.

Why the runs are comparable: the mixed training stream has no static batch size (video and image
batches alternate), so `experimental_distribute_dataset` splits every global batch into
`num_replicas_in_sync` pieces (legacy rebatch) and auto-shards the result by DATA, so worker i
trains on piece i of every global batch of the one deterministic stream; the 2 x 1 replicas
together see exactly the single process's batches. Keras scales each replica's mean loss by
1 / replicas and sums the gradients, i.e. the global mean gradient, up to float summation order.
Two things would break the equivalence and are switched off here: drop path (random per replica)
and gradient clipping (Keras 3 clips each replica's gradient before the all-reduce, not the
global one).
"""

import csv
import json
import os
import socket
import subprocess

import keras
import numpy as np
import pytest

import cover_tf  # noqa: F401  (registers the Keras classes)
from tests.training.conftest import REPO, train_command

OVERRIDES = (
    "train.steps=6",
    "train.steps_per_epoch=3",
    "model.drop_path_rate=0.0",
    "optimizer.clip_norm=0.0",
    # alpha 0.5: about half the steps are video batches, half image batches (both shape groups);
    # demo.yaml's explicit weights would override it
    "mixing.alpha=0.5",
    "datasets.appearance.weight=null",
    "datasets.motion.weight=null",
    "datasets.images.weight=null",
)
TIMEOUT = 420
# All-reduce vs one-process summation order changes the last bits of each gradient; Adam's
# normalisation and 6 steps amplify that a little. Measured differences are ~1e-7 (losses) and
# ~1e-7 (weights); 1e-4 still fails on any real mismatch (other data, scaling or clipping).
TOLERANCE = 1e-4


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start(command, log_path, tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    with open(log_path, "w") as log:
        return subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)


def history(workdir):
    """Per-epoch logged values; Keras' CSVLogger adds `val_*` columns of "NA" (no validation)."""
    rows = list(csv.DictReader((workdir / "history.csv").open()))
    return {
        key: np.array([float(row[key]) for row in rows])
        for key in rows[0]
        if not key.startswith("val_")
    }


def weights(workdir):
    return keras.saving.load_model(workdir / "model.keras", compile=False).get_weights()


def test_two_workers_train_in_step_and_match_one_process(tmp_path, synthetic_data_dir):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    shared, single = tmp_path / "multi", tmp_path / "single"
    multi = train_command(shared, synthetic_data_dir, *OVERRIDES, "train.strategy=multi_worker")
    processes = []
    try:
        for index in range(2):
            tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            processes.append(start(multi, tmp_path / f"worker_{index}.log", tf_config))
        single_command = train_command(single, synthetic_data_dir, *OVERRIDES)
        processes.append(start(single_command, tmp_path / "single.log"))
        for process in processes:
            process.wait(timeout=TIMEOUT)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, name in zip(processes, ("worker_0", "worker_1", "single"), strict=True):
        log = (tmp_path / f"{name}.log").read_text()
        assert process.returncode == 0, f"{name} failed:\n{log[-3000:]}"

    chief, worker = shared, shared / "worker_1"
    metrics = {
        name: json.loads((workdir / "metrics.json").read_text())
        for name, workdir in (("chief", chief), ("worker", worker), ("single", single))
    }
    # In step: one cluster of 2 replicas, the same number of steps on both workers.
    assert metrics["chief"]["train/replicas"] == metrics["worker"]["train/replicas"] == 2
    assert metrics["single"]["train/replicas"] == 1
    assert {m["train/steps"] for m in metrics.values()} == {6}
    # Only the chief writes the workdir itself; worker 1 keeps its copies apart.
    assert (chief / "model.keras").is_file() and (worker / "model.keras").is_file()
    assert not (chief / "worker_0").exists()

    # Identical weights and logged losses on both workers (all-reduced updates).
    chief_weights, worker_weights, single_weights = weights(chief), weights(worker), weights(single)
    for a, b in zip(chief_weights, worker_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    chief_history, worker_history = history(chief), history(worker)
    for key in chief_history:
        if key != "steps_per_s":
            np.testing.assert_array_equal(chief_history[key], worker_history[key], err_msg=key)
    for name in ("appearance", "motion", "images"):
        for metric in ("top1", "top5"):
            key = f"{name}/{metric}"
            assert metrics["chief"][key] == metrics["worker"][key]

    # Agreement with the single process: same batches, same losses and weights.
    single_history = history(single)
    # Both shape groups trained in both epochs (a video and an image batch at least).
    for name in ("appearance", "motion", "images"):
        assert np.all(single_history[f"{name}_loss"] > 0), name
    for key in chief_history:
        if key.endswith("loss") or key.endswith(("top1", "top5")):
            np.testing.assert_allclose(
                chief_history[key], single_history[key], rtol=0, atol=TOLERANCE, err_msg=key
            )
    for a, b in zip(chief_weights, single_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE)
    for name in ("appearance", "motion", "images"):
        assert metrics["chief"][f"{name}/num_examples"] == metrics["single"][f"{name}/num_examples"]
        for metric in ("top1", "top5"):
            key = f"{name}/{metric}"
            assert metrics["chief"][key] == pytest.approx(metrics["single"][key], abs=1 / 40 + 1e-9)
