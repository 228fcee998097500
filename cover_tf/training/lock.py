"""The workdir lock: one training job per workdir at a time.

The lock is a small JSON file (`Workdir(root).lock`) naming its owner (host, pid, start time,
command). It appears only complete, and exclusively, so of two jobs starting together exactly one
gets it:

- local disk: the owner record is written and synced to a file of its own, then hard-linked to
  the lock name (`os.link`, which fails when the name exists: atomic on POSIX filesystems). On a
  full disk the record's write fails and no lock appears. Where the filesystem has no hard links,
  `os.open(O_CREAT | O_EXCL)` and a write, removing the file again when the write fails;
- any other `tf.io.gfile` filesystem (`gs://`, `s3://`, `ram://`): the owner record is written to
  a file of its own, then `tf.io.gfile.rename(..., overwrite=False)` moves it to the lock name and
  the lock is read back to confirm the owner. On `gs://` TF implements that rename as "fail if the
  destination exists, else copy + delete", a check and a write rather than one atomic step (the
  atomic form is a create with the `ifGenerationMatch=0` precondition, which `tf.io.gfile` does
  not expose); the read-back catches the loser of a near-simultaneous start.

A lock whose owner is on this host and whose pid is no longer alive (a job killed with `kill -9`,
a crashed machine rebooted) is stale: the next job takes it over with a warning. So is a lock file
that is empty or names no host and pid (left by earlier versions, which created the file before
writing it, on a full disk): it was never completed, so no job holds it. A lock held by another
host is never taken over: the job refuses and says how to remove it.
"""

import contextlib
import datetime
import errno
import json
import os
import socket
import sys
import uuid

import tensorflow as tf
from absl import logging

from cover_tf.cli import UserError
from cover_tf.workdir import is_local

# os.link's errors on a filesystem without hard links (vfat, some FUSE and SMB mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.ENOSYS}


class WorkdirBusy(UserError, RuntimeError):
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
    """Creates `path` holding `text` unless it exists; True when this call created it. The file
    appears with all of `text` or not at all (module docstring)."""
    if is_local(path):
        folder, name = os.path.split(path)
        claim = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.partial")
        try:
            try:
                with open(claim, "w") as file:
                    file.write(text)
                    file.flush()
                    os.fsync(file.fileno())
            except OSError as error:  # write() names no file: name the lock
                raise OSError(error.errno, error.strerror, path) from error
            try:
                os.link(claim, path)
            except FileExistsError:
                return False
            except OSError as error:
                if error.errno not in _NO_HARD_LINKS:
                    raise
                return _create_exclusive_unlinked(path, text)
            return True
        finally:
            with contextlib.suppress(OSError):
                os.remove(claim)
    # Not "<path>.<suffix>": TF's ram:// filesystem takes a file named with `path` as prefix
    # for `path` itself.
    folder, _, name = path.rpartition("/")
    claim = f"{folder}/.{name}.claim-{uuid.uuid4().hex}"
    try:
        with tf.io.gfile.GFile(claim, "w") as file:
            file.write(text)
        tf.io.gfile.rename(claim, path, overwrite=False)
    except tf.errors.AlreadyExistsError:
        tf.io.gfile.remove(claim)
        return False
    except BaseException:
        with contextlib.suppress(tf.errors.OpError):
            tf.io.gfile.remove(claim)
        raise
    with tf.io.gfile.GFile(path) as file:
        return file.read() == text


def _create_exclusive_unlinked(path: str, text: str) -> bool:
    """`_create_exclusive` where hard links are not available: `O_CREAT | O_EXCL`, then the
    write; a failed write removes the file again, so no empty lock stays."""
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(path)
        raise
    return True


def _owner(text: str) -> dict:
    """The owner record of a lock file's text; {} when it names no owner (a host and a pid)."""
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    complete = (
        isinstance(record, dict)
        and isinstance(record.get("host"), str)
        and isinstance(record.get("pid"), int)
    )
    return record if complete else {}


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

    def _read(self) -> str | None:
        """The lock file's text, None when there is no lock file."""
        try:
            with tf.io.gfile.GFile(self.path) as file:
                return file.read()
        except tf.errors.NotFoundError:
            return None

    def holder(self) -> dict | None:
        """The owner record in the lock file ({} when it names no owner), None when there is no
        lock."""
        text = self._read()
        return None if text is None else _owner(text)

    def describe(self, record: dict) -> str:
        if not record:
            return f"an unreadable lock file {self.path}"
        return (
            f"pid {record.get('pid')} on host {record.get('host')!r} since {record.get('started')}"
        )

    def acquire(self) -> "WorkdirLock":
        """Takes the lock, taking over a stale or never completed one; raises WorkdirBusy when it
        is held."""
        text = json.dumps(self.owner)
        for _ in range(3):
            if _create_exclusive(self.path, text):
                self.held = True
                return self
            found = self._read()
            if found is None:  # released between our create and our read: try again
                continue
            record = _owner(found)
            if not record:
                logging.warning(
                    "Taking over the lock file %s: it is %s, so no job holds it",
                    self.path,
                    "empty" if not found.strip() else "incomplete (it names no host and pid)",
                )
                self._remove_if_unchanged(found)
                continue
            same_host = record.get("host") == self.owner["host"]
            pid = record.get("pid")
            if same_host and not _alive(pid):
                logging.warning(
                    "Taking over the stale lock of %s (that process is gone)",
                    self.describe(record),
                )
                self._remove_if_unchanged(found)
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

    def _remove_if_unchanged(self, text: str) -> None:
        """Removes the lock file unless another job has taken it over meanwhile."""
        if self._read() == text:
            with contextlib.suppress(tf.errors.NotFoundError):
                tf.io.gfile.remove(self.path)

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
