"""Reliability cases run as a user runs them: `python -m cover_tf.train` subprocesses on real
workdirs, sharing one prepared cover_synthetic data_dir and one finished tiny run."""

import os
import shutil
import subprocess

import pytest

from tests.training.conftest import REPO, synthetic_data_dir, train_command  # noqa: F401

# 2 epochs of 1 step, so a finished run holds backups of epochs 1 and 2.
TINY = ("train.steps=2", "train.steps_per_epoch=1", "eval.max_examples=8", "eval.batch_size=8")


def train(workdir, data_dir, *extra, args=(), timeout=600):
    """(exit status, stderr) of `python -m cover_tf.train` on the tiny run."""
    command = train_command(workdir, data_dir, *TINY, *extra) + list(args)
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return result.returncode, result.stderr


@pytest.fixture(scope="session")
def finished_run(synthetic_data_dir, tmp_path_factory):  # noqa: F811
    workdir = tmp_path_factory.mktemp("finished") / "run"
    status, stderr = train(workdir, synthetic_data_dir)
    assert status == 0, stderr[-3000:]
    return workdir


@pytest.fixture
def workdir_copy(finished_run, tmp_path):
    """A private copy of the finished run's workdir."""
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy
