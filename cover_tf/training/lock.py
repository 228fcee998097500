"""The workdir lock: one training job per workdir at a time.

The lock is a small JSON file (`Workdir(root).lock`) naming its owner (host, pid, start time,
command). It is created exclusively, so of two jobs starting together exactly one gets it:

- local disk: `os.open(O_CREAT | O_EXCL)`, atomic on POSIX filesystems;
- any other `tf.io.gfile` filesystem (`gs://`, `s3://`, `ram://`): the owner record is written to
  a file of its own, then `tf.io.gfile.rename(..., overwrite=False)` moves it to the lock name and
  the lock is read back to confirm the owner. On `gs://` TF implements that rename as "fail if the
  destination exists, else copy + delete", a check and a write rather than one atomic step (the
  atomic form is a create with the `ifGenerationMatch=0` precondition, which `tf.io.gfile` does
  not expose); the read-back catches the loser of a near-simultaneous start.

A lock whose owner is on this host and whose pid is no longer alive (a job killed with `kill -9`,
a crashed machine rebooted) is stale: the next job takes it over with a warning. A lock held by
another host is never taken over: the job refuses and says how to remove it.
"""

import datetime
import json
import os
import socket
import sys
import uuid

import tensorflow as tf
from absl import logging

from cover_tf.workdir import is_local


class WorkdirBusy(RuntimeError):
    """Another job holds the workdir; the message names it and how to remove a dead one's lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _create_exclusive(path: str, text: str) -> bool:
    """Creates `path` holding `text` unless it exists; True when this call created it."""
    if is_local(path):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(handle, "w") as file:
            file.write(text)
        return True
    # Not "<path>.<suffix>": TF's ram:// filesystem takes a file named with `path` as prefix
    # for `path` itself.
    folder, _, name = path.rpartition("/")
    claim = f"{folder}/.{name}.claim-{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(claim, "w") as file:
        file.write(text)
    try:
        tf.io.gfile.rename(claim, path, overwrite=False)
    except tf.errors.AlreadyExistsError:
        tf.io.gfile.remove(claim)
        return False
    with tf.io.gfile.GFile(path) as file:
        return file.read() == text


class WorkdirLock:
    """The running job's claim on a training workdir (a context manager).

    Args:
        path: the lock file, `Workdir(root).lock`.
        workdir: the workdir, for messages.
    """

    def __init__(self, path: str, workdir: str):
        self.path = str(path)
        self.workdir = str(workdir)
        self.owner = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
            "token": uuid.uuid4().hex,
        }
        self.held = False

    def holder(self) -> dict | None:
        """The owner record in the lock file ({} when unreadable), None when there is no lock."""
        try:
            with tf.io.gfile.GFile(self.path) as file:
                text = file.read()
        except tf.errors.NotFoundError:
            return None
        try:
            record = json.loads(text)
        except ValueError:
            return {}
        return record if isinstance(record, dict) else {}

    def describe(self, record: dict) -> str:
        if not record:
            return f"an unreadable lock file {self.path}"
        return (
            f"pid {record.get('pid')} on host {record.get('host')!r} since {record.get('started')}"
        )

    def acquire(self) -> "WorkdirLock":
        """Takes the lock, taking over a stale one; raises WorkdirBusy when it is held."""
        text = json.dumps(self.owner)
        for _ in range(3):
            if _create_exclusive(self.path, text):
                self.held = True
                return self
            record = self.holder()
            if record is None:  # released between our create and our read: try again
                continue
            same_host = record.get("host") == self.owner["host"]
            pid = record.get("pid")
            if same_host and isinstance(pid, int) and not _alive(pid):
                logging.warning(
                    "Taking over the stale lock of %s (that process is gone)",
                    self.describe(record),
                )
                if self.holder() == record:  # not taken over by another job meanwhile
                    tf.io.gfile.remove(self.path)
                continue
            if same_host:
                raise WorkdirBusy(
                    f"workdir {self.workdir} is in use by {self.describe(record)} "
                    f"({record.get('command', '?')}); wait for it or stop it"
                )
            raise WorkdirBusy(
                f"workdir {self.workdir} is locked by {self.describe(record)}; if that job is no "
                f"longer running, delete {self.path} and start again"
            )
        raise WorkdirBusy(f"workdir {self.workdir}: could not take {self.path}; another job races")

    def release(self) -> None:
        """Removes the lock file if it still names this job."""
        if not self.held:
            return
        self.held = False
        record = self.holder()
        if record and record.get("token") == self.owner["token"]:
            tf.io.gfile.remove(self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
        return False
