"""What a user gets from `python -m cover_tf.train` when something is wrong (README "Failure
modes"): one line and exit status 2, before the workdir is written, or a warned recovery.
(A disk that fills: test_full_disk.py.)"""

import json
import os
import subprocess
import time

import pytest

from tests.reliability.conftest import REPO, TINY, train, train_command


def last_line(stderr):
    """The error line, as `train: <sentence>` whether it reads so or `train: error: <sentence>`
    (cover_tf.cli's style)."""
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("train: "), line
    return "train: " + line.removeprefix("train: ").removeprefix("error: ")


@pytest.mark.slow  # a run held busy while a second one starts: ~1.5 min on 2 busy cores
def test_a_second_run_on_a_busy_workdir_is_refused(tmp_path, synthetic_data_dir):
    workdir = tmp_path / "run"
    first = subprocess.Popen(
        train_command(workdir, synthetic_data_dir, *TINY, "train.steps=200"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    try:
        deadline = time.monotonic() + 300
        while not (workdir / "LOCK").exists() and time.monotonic() < deadline:
            assert first.poll() is None, "the first run ended before it locked the workdir"
            time.sleep(0.2)
        status, stderr = train(workdir, synthetic_data_dir, "train.steps=200")
        assert status == 2
        assert last_line(stderr) == (
            f"train: workdir {workdir} is in use by pid {first.pid} on host "
            f"{json.loads((workdir / 'LOCK').read_text())['host']!r} since "
            f"{json.loads((workdir / 'LOCK').read_text())['started']} "
            f"({json.loads((workdir / 'LOCK').read_text())['command']}); wait for it or stop it"
        )
    finally:
        first.terminate()  # SIGTERM unwinds the job: its lock goes with it
        first.wait(timeout=120)
    assert not (workdir / "LOCK").exists()


def _truncate_latest(backup):
    weights = backup / "epoch_00002.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    return "epoch_00002.weights.h5 has 1000 bytes"


def _garbage_pointer(backup):
    (backup / "state.json").write_text("\x00garbage")
    return "state.json is not JSON"


def _empty_pointer(backup):
    (backup / "state.json").write_text("{}")
    return "state.json has no epoch"


def _pointer_to_a_missing_file(backup):
    (backup / "state.json").write_text('{"epoch": 3, "weights": "epoch_00003.weights.h5"}')
    return "epoch_00003.weights.h5 is missing"


@pytest.mark.parametrize(
    "damage", [_truncate_latest, _garbage_pointer, _empty_pointer, _pointer_to_a_missing_file]
)
def test_a_damaged_backup_falls_back_with_a_warning(workdir_copy, synthetic_data_dir, damage):
    named = damage(workdir_copy / "backup")
    status, stderr = train(workdir_copy, synthetic_data_dir)
    assert status == 0, stderr[-3000:]
    assert "Damaged backup" in stderr and named in stderr
    metrics = json.loads((workdir_copy / "metrics.json").read_text())
    # truncated epoch 2: epoch 1 and one more epoch; damaged pointers: epoch 2's own record
    assert metrics["train/epochs_resumed"] == (1 if "1000 bytes" in named else 2)
    assert metrics["train/steps"] == 2


@pytest.mark.slow  # trains twice: ~1.5 min on 2 busy cores
def test_no_usable_backup_stops_and_restart_starts_fresh(workdir_copy, synthetic_data_dir):
    for weights in (workdir_copy / "backup").glob("*.weights.h5"):
        weights.write_bytes(b"")
    status, stderr = train(workdir_copy, synthetic_data_dir)
    assert status == 2
    assert last_line(stderr).startswith(f"train: no usable backup in {workdir_copy}/backup: ")
    assert last_line(stderr).endswith("rerun with --restart")
    status, stderr = train(workdir_copy, synthetic_data_dir, args=["--restart"])
    assert status == 0, stderr[-3000:]
    assert json.loads((workdir_copy / "metrics.json").read_text())["train/epochs_resumed"] == 0


def test_an_empty_lock_is_taken_over_in_one_line(workdir_copy, synthetic_data_dir):
    # What a run of an earlier version left on a full disk: it created LOCK, then could not
    # write its owner into it; every later run was refused until the user deleted it.
    (workdir_copy / "LOCK").write_bytes(b"")
    status, stderr = train(workdir_copy, synthetic_data_dir)
    assert status == 0, stderr[-3000:]
    assert [line for line in stderr.splitlines() if "LOCK" in line] == [
        f"WARNING:absl:Taking over the lock file {workdir_copy}/LOCK: it is empty, so no job "
        "holds it"
    ]
    assert not (workdir_copy / "LOCK").exists()


def test_a_changed_config_is_refused_before_anything_is_written(workdir_copy, synthetic_data_dir):
    before = {p: p.read_bytes() for p in workdir_copy.rglob("*") if p.is_file()}
    status, stderr = train(workdir_copy, synthetic_data_dir, "model.hidden_size=64")
    assert status == 2
    assert last_line(stderr) == (
        f"train: this config differs from {workdir_copy}/config.yaml: "
        "model.hidden_size: 32 -> 64; train this config in a new --workdir"
    )
    status, stderr = train(workdir_copy, synthetic_data_dir, "eval.max_examples=16")
    assert status == 2 and "rerun with --allow-config-change" in last_line(stderr)
    after = {p: p.read_bytes() for p in workdir_copy.rglob("*") if p.is_file()}
    assert after == before
    status, stderr = train(
        workdir_copy, synthetic_data_dir, "eval.max_examples=16", args=["--allow-config-change"]
    )
    assert status == 0, stderr[-3000:]
    assert json.loads((workdir_copy / "metrics.json").read_text())["motion/num_examples"] == 16


def test_an_unknown_builder_config_is_one_line(tmp_path, synthetic_data_dir):
    workdir = tmp_path / "run"
    status, stderr = train(workdir, synthetic_data_dir, "datasets.motion.builder=cover_synthetic/x")
    assert status == 2 and "Traceback" not in stderr
    assert last_line(stderr) == (
        "train: datasets.motion.builder 'cover_synthetic/x' cannot be used: Unknown config 'x' "
        "of dataset builder 'cover_synthetic': valid configs: appearance, motion, images, "
        "appearance_2_2, motion_2_2, images_2_2"
    )
    assert not workdir.exists()
    status, stderr = train(
        workdir, synthetic_data_dir, "datasets.motion.builder=no_such_set", args=["--verbose"]
    )
    assert status == 2 and "Traceback" in stderr  # --verbose shows it
    assert (
        "datasets.motion.builder 'no_such_set' cannot be used: Unknown dataset builder 'no_such_set'"
        in stderr
    )
    assert not workdir.exists()


def test_a_workdir_that_is_a_file_is_one_line(tmp_path, synthetic_data_dir):
    workdir = tmp_path / "run"
    workdir.write_text("notes")
    status, stderr = train(workdir, synthetic_data_dir)
    assert status == 2
    assert (
        last_line(stderr)
        == f"train: workdir {workdir} is a file, not a folder; give another --workdir"
    )
    assert workdir.read_text() == "notes"


def test_a_read_only_workdir_is_one_line(tmp_path, synthetic_data_dir):
    if os.geteuid() == 0:  # root writes through permission bits: use a read-only filesystem
        workdir = "/sys/kernel"
        if os.access(workdir, os.W_OK) and not os.path.isdir(workdir):
            pytest.skip("no read-only folder on this machine")
    else:
        workdir = tmp_path / "readonly"
        workdir.mkdir()
        workdir.chmod(0o555)
    status, stderr = train(workdir, synthetic_data_dir)
    assert status == 2 and "Traceback" not in stderr
    assert last_line(stderr).startswith(f"train: workdir {workdir} ")
    assert "not writable" in last_line(stderr) or "read-only" in last_line(stderr)
