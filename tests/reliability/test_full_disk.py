"""Training on a disk that fills: one sentence and exit 2 at any moment, nothing half-written
left, and the same command resumes from the last verified backup once there is space.

The disk is a real 30 MiB tmpfs (`small_disk`, tests/reliability/conftest.py) filled to a
chosen free space with a filler file: every write below fails with the kernel's ENOSPC, no
double. (h5py writing on such a disk crashed the process with SIGSEGV: the in-process backup
test below would take pytest down with it.)
"""

import errno
import json
import re

import pytest

from cover_tf.training import backup, storage
from cover_tf.training.lock import WorkdirLock
from tests.reliability.conftest import train
from tests.training.test_backup import tiny_model

SENTENCE = re.compile(
    r"^train: (error: )?no space left on the disk of workdir (?P<workdir>\S+)"
    r"( \(writing (?P<what>\S+)\))?; free some space and run the same command again: it resumes "
    r"from (the start \(no backup was made yet\)|the verified backup of epoch (?P<epoch>\d+))$"
)


def test_a_lock_on_a_full_disk_leaves_no_lock(small_disk):
    workdir = small_disk.root / "run"
    workdir.mkdir()
    small_disk.leave(0)
    with pytest.raises(OSError) as raised:
        WorkdirLock(str(workdir / "LOCK"), str(workdir)).acquire()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(workdir / "LOCK")
    assert list(workdir.iterdir()) == []  # no empty LOCK that would refuse the next run
    small_disk.empty()
    with WorkdirLock(str(workdir / "LOCK"), str(workdir)):
        assert json.loads((workdir / "LOCK").read_text())["host"]


def test_a_file_replaced_on_a_full_disk_keeps_its_old_content(small_disk):
    path = small_disk.root / "history.csv"
    storage.write_text(str(path), "epoch,loss\n0,1.0\n")
    small_disk.leave(0)
    with pytest.raises(OSError) as raised:
        storage.write_text(str(path), "epoch,loss\n0,1.0\n" + "1,0.5\n" * 10_000)
    assert storage.out_of_space(raised.value) and raised.value.filename == str(path)
    assert path.read_text() == "epoch,loss\n0,1.0\n"
    assert small_disk.leftovers(small_disk.root) == []


def test_a_backup_on_a_full_disk_keeps_the_verified_ones(small_disk):
    folder = small_disk.root / "backup"
    model = tiny_model(0)
    callback = backup.AtomicBackup(str(folder))
    callback.set_model(model)
    callback.on_epoch_end(0)
    callback.on_epoch_end(1)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    size = len(storage.weights_bytes(model))
    for free in (0, 4096, size // 2):  # nothing, a page, half the file
        small_disk.leave(free)
        with pytest.raises(OSError) as raised:
            callback.on_epoch_end(2)
        assert storage.out_of_space(raised.value)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    checkpoint = small_disk.root / "checkpoint.keras"
    with pytest.raises(OSError):
        storage.save_model(model, str(checkpoint))
    assert not checkpoint.exists()
    assert small_disk.leftovers(small_disk.root) == []
    assert backup.newest_verified(str(folder)) == 2
    small_disk.empty()
    callback.on_epoch_end(2)
    assert backup.restore(tiny_model(1), str(folder)) == 3


# Free space left before a tiny run (2 epochs of 1 step; a backup is ~0.5 MB, so is a
# checkpoint; tmpfs counts 4 KiB pages) and where the disk fills: the claim of the workdir, the
# first backup, the second epoch's checkpoint with one backup made. (12 KiB fills at TensorBoard's
# events file and 1800 KiB at the final model after the last backup: add them here to try those.)
FREE_KB = {
    "at the start": 0,
    "during the first backup": 700,
    "mid-run": 1300,
}


@pytest.mark.slow  # two tiny trainings per fill level: ~1-2 min each on 2 busy cores
@pytest.mark.parametrize("free_kb", FREE_KB.values(), ids=FREE_KB.keys())
def test_training_on_a_full_disk_stops_in_a_sentence_and_resumes(
    small_disk, synthetic_data_dir, free_kb
):
    workdir = small_disk.root / "run"
    small_disk.leave(free_kb << 10)
    status, stderr = train(workdir, synthetic_data_dir)
    assert status == 2, stderr[-3000:]  # not a signal (139) nor a traceback (1)
    assert "Traceback" not in stderr and "h5py" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    sentence = SENTENCE.match(last)
    assert sentence, last
    assert sentence["workdir"] == str(workdir)
    assert small_disk.leftovers(workdir) == []
    assert not (workdir / "LOCK").exists()
    resumes_from = int(sentence["epoch"] or 0)

    small_disk.empty()
    status, stderr = train(workdir, synthetic_data_dir)
    assert status == 0, stderr[-3000:]
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["train/epochs_resumed"] == resumes_from
    assert metrics["train/steps"] == 2
    history = (workdir / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["0", "1"]  # no repeated epoch
    assert small_disk.leftovers(workdir) == []
