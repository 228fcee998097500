"""The workdir lock: exclusive, names its holder, takes over a dead job's, released on errors."""

import json
import logging
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
