"""The workdir lock: exclusive, names its holder, takes over a dead job's or a never completed
one, released on errors. (On a full disk: tests/reliability/test_full_disk.py.)"""

import errno
import json
import logging
import os
import socket
import subprocess
import sys

import pytest
import tensorflow as tf

from cover_tf.training.lock import WorkdirBusy, WorkdirLock


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_lock(path, host, pid):
    path.write_text(json.dumps({"host": host, "pid": pid, "started": "then", "command": "train"}))


def test_a_second_claim_is_refused_naming_the_holder(tmp_path):
    lock = tmp_path / "LOCK"
    with WorkdirLock(str(lock), str(tmp_path)) as first:
        assert json.loads(lock.read_text())["pid"] == first.owner["pid"]
        with pytest.raises(WorkdirBusy, match=f"in use by pid {first.owner['pid']} on host"):
            WorkdirLock(str(lock), str(tmp_path)).acquire()
    assert not lock.exists()


def test_released_when_the_job_fails(tmp_path):
    lock = tmp_path / "LOCK"
    with pytest.raises(ZeroDivisionError):
        with WorkdirLock(str(lock), str(tmp_path)):
            1 / 0  # noqa: B018
    assert not lock.exists()


def test_a_dead_jobs_lock_is_taken_over_with_a_warning(tmp_path, caplog):
    lock = tmp_path / "LOCK"
    pid = dead_pid()
    write_lock(lock, socket.gethostname(), pid)
    caplog.set_level(logging.WARNING, logger="absl")
    with WorkdirLock(str(lock), str(tmp_path)) as claim:
        assert json.loads(lock.read_text())["token"] == claim.owner["token"]
    assert f"stale lock of pid {pid}" in caplog.text


def test_another_hosts_lock_is_never_taken(tmp_path):
    lock = tmp_path / "LOCK"
    write_lock(lock, "elsewhere", dead_pid())
    with pytest.raises(WorkdirBusy, match=f"host 'elsewhere'.*delete {lock}"):
        WorkdirLock(str(lock), str(tmp_path)).acquire()
    assert json.loads(lock.read_text())["host"] == "elsewhere"


def test_on_a_non_local_filesystem(tmp_path):
    root = "ram://lock_test/run"
    tf.io.gfile.makedirs(root)  # the job creates its workdir before it claims it
    with WorkdirLock(f"{root}/LOCK", root):
        with pytest.raises(WorkdirBusy):
            WorkdirLock(f"{root}/LOCK", root).acquire()
    with WorkdirLock(f"{root}/LOCK", root):  # released: free again
        pass


@pytest.mark.parametrize(
    "content, what",
    [("", "empty"), ('{"started": "then"}', "incomplete"), ('{"host": "h", "pi', "incomplete")],
)
def test_an_empty_or_incomplete_lock_is_no_lock(tmp_path, caplog, content, what):
    # Earlier versions created the file before writing it: a full disk left it empty.
    lock = tmp_path / "LOCK"
    lock.write_text(content)
    caplog.set_level(logging.WARNING, logger="absl")
    with WorkdirLock(str(lock), str(tmp_path)) as claim:
        assert json.loads(lock.read_text())["token"] == claim.owner["token"]
    (warning,) = [r.getMessage() for r in caplog.records if "Taking over" in r.getMessage()]
    assert warning.startswith(f"Taking over the lock file {lock}: it is {what}")
    assert warning.endswith(", so no job holds it")
    assert not lock.exists()


def test_the_lock_appears_only_complete(tmp_path, monkeypatch):
    # Whatever moment a job is stopped at while claiming, a LOCK that exists names its owner:
    # the record is written to a file of its own and linked to the lock name.
    lock = tmp_path / "LOCK"
    seen = []
    real_link = os.link

    def link(source, target):
        assert not lock.exists()
        seen.append(json.loads(open(source).read())["pid"])
        real_link(source, target)

    monkeypatch.setattr(os, "link", link)
    with WorkdirLock(str(lock), str(tmp_path)):
        assert seen == [os.getpid()]
        assert [p.name for p in tmp_path.iterdir()] == ["LOCK"]  # the claim file is gone
    assert list(tmp_path.iterdir()) == []


def test_without_hard_links_the_lock_is_created_exclusively(tmp_path, monkeypatch):
    lock = tmp_path / "LOCK"

    def no_link(source, target):
        raise PermissionError(errno.EPERM, "Operation not permitted")  # vfat, some FUSE mounts

    monkeypatch.setattr(os, "link", no_link)
    with WorkdirLock(str(lock), str(tmp_path)) as first:
        assert json.loads(lock.read_text())["pid"] == first.owner["pid"]
        with pytest.raises(WorkdirBusy, match="in use by"):
            WorkdirLock(str(lock), str(tmp_path)).acquire()
    assert list(tmp_path.iterdir()) == []
