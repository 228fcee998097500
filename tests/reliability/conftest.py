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


class SmallDisk:
    """A 30 MiB tmpfs: a real filesystem that fills (ENOSPC), mounted for one test."""

    SIZE = 30 << 20

    def __init__(self, root):
        self.root = root
        self.filler = root / "filler"

    def free(self) -> int:
        stats = os.statvfs(self.root)
        return stats.f_bavail * stats.f_frsize

    def leave(self, free_bytes: int) -> None:
        """Fills the disk with a filler file until `free_bytes` (rounded to pages) are free."""
        self.empty()
        size = self.free() - free_bytes
        if size > 0:
            with open(self.filler, "wb") as file:
                os.posix_fallocate(file.fileno(), 0, size)

    def empty(self) -> None:
        """Removes the filler: the space a user frees."""
        self.filler.unlink(missing_ok=True)

    def leftovers(self, folder) -> list:
        """Temp files and empty files under `folder`: a failed write must leave neither."""
        return sorted(
            str(p.relative_to(folder))
            for p in folder.rglob("*")
            if p.is_file() and (".partial" in p.name or p.stat().st_size == 0)
        )


@pytest.fixture
def small_disk(tmp_path):
    """A `SmallDisk` (tmpfs mounted on tmp_path/disk; needs root, else the test is skipped)."""
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SmallDisk.SIZE}", "tmpfs", str(root)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
