"""Crash-safe training state: weights and optimizer saved and verified at every epoch end.

Keras' `BackupAndRestore` overwrites its weights file in place and writes its epoch file after
it, so a `kill -9` during a save leaves a corrupt HDF5 file or an epoch count that does not
match the weights. Here each epoch's state goes to a new file `epoch_<n>.weights.h5`; once it is
complete its size and sha256 (read back from storage) go to a record `epoch_<n>.json` beside it,
and only then the pointer `state.json` is switched to it:

    {"epoch": n, "weights": "epoch_<n>.weights.h5", "size": bytes, "sha256": hex,
     "previous": {the same fields for the backup before}}

The last two verified backups are kept. `restore` takes the newest backup whose file exists,
has the recorded size and checksum and loads; a damaged one is named in a warning and the one
before it is used. When backups exist but none is usable, it raises `BackupError` (never a
silent start from scratch). Every file goes through `tf.io.gfile` (`storage`), so a workdir may
live on `gs://` or `ram://`.

The weights file is made in memory (`storage.weights_bytes`: h5py never writes on the disk) and
written like any other file, through a temp file on local disk; the checksum recorded is that
of the bytes made, read back from storage. A save that fails (a full disk) removes what it wrote
of its epoch and raises the error: the backups before it stay as they were.
"""

import json
import re

import keras
import tensorflow as tf
from absl import logging

from cover_tf import workdir as workdir_layout
from cover_tf.cli import UserError
from cover_tf.training import storage

STATE_FILE = "state.json"
ENTRY_FIELDS = ("epoch", "weights", "size", "sha256")
_WEIGHTS = re.compile(r"^epoch_(\d+)\.weights\.h5$")
_RECORD = re.compile(r"^epoch_(\d+)\.json$")


class BackupError(UserError, RuntimeError):
    """No usable backup although the workdir has some; the message says how to start fresh."""


def weights_name(epoch: int) -> str:
    return f"epoch_{epoch:05d}.weights.h5"


def record_name(epoch: int) -> str:
    return f"epoch_{epoch:05d}.json"


def _read_json(path):
    """(value, None) or (None, what is wrong with the file)."""
    try:
        text = storage.read_text(path)
    except tf.errors.NotFoundError:
        return None, "missing"
    if not text.strip():
        return None, "empty"
    try:
        return json.loads(text), None
    except ValueError:
        return None, "not JSON"


def _entry_problem(entry) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("epoch"), int):
        return "has no epoch"
    if not isinstance(entry.get("weights"), str) or "/" in entry["weights"]:
        return "names no weights file"
    return None


def candidates(backup_dir) -> tuple[list, list, bool]:
    """(entries newest first, [damage notes], whether any backup was ever recorded).

    Entries come from the pointer and, when the pointer is damaged or lost, from the per-backup
    records; entries without size/sha256 (older workdirs) are verified by loading only.
    """
    pointer = workdir_layout.join(backup_dir, STATE_FILE)
    if not tf.io.gfile.isdir(backup_dir):
        return [], [], False
    names = tf.io.gfile.listdir(backup_dir)
    # A weights file without its record is a save that never finished: nothing to resume from.
    present = any(_RECORD.match(n) or n == STATE_FILE for n in names)
    notes, entries = [], {}
    state, problem = _read_json(pointer)
    if state is not None:
        for entry in (state, state.get("previous") if isinstance(state, dict) else None):
            if entry is None:
                continue
            problem = _entry_problem(entry)
            if problem is None:
                entries.setdefault(entry["epoch"], entry)
            else:
                notes.append(f"{pointer} {problem} ({json.dumps(entry)[:80]})")
    elif problem != "missing" or present:
        notes.append(f"{pointer} is {problem}")
    for name in names:
        if _RECORD.match(name):
            record, _ = _read_json(workdir_layout.join(backup_dir, name))
            if _entry_problem(record) is None:
                entries.setdefault(record["epoch"], record)
    return [entries[epoch] for epoch in sorted(entries, reverse=True)], notes, present


def verify(backup_dir, entry) -> str | None:
    """None when the entry's weights file exists with its recorded size and sha256, else why."""
    path = workdir_layout.join(backup_dir, entry["weights"])
    if not tf.io.gfile.exists(path):
        return f"{path} is missing"
    if "size" not in entry or "sha256" not in entry:
        return None
    size, sha256 = storage.size_and_sha256(path)
    if size != entry["size"]:
        return f"{path} has {size} bytes, {entry['size']} were written (truncated?)"
    if sha256 != entry["sha256"]:
        return f"{path} does not match its sha256 checksum"
    return None


def restore(model, backup_dir):
    """Loads the newest usable backup into a compiled model; returns its completed epochs.

    0 when there is no backup. Raises BackupError when backups exist but none is usable.
    """
    entries, notes, present = candidates(backup_dir)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    for entry in entries:
        problem = verify(backup_dir, entry)
        if problem is None:
            try:
                model.load_weights(workdir_layout.join(backup_dir, entry["weights"]))
            except Exception as error:  # noqa: BLE001  (h5py / Keras raise many kinds)
                problem = f"{entry['weights']} cannot be loaded ({type(error).__name__}: {error})"
        if problem is None:
            if notes:
                logging.warning(
                    "Damaged backup: %s; resuming from the backup of epoch %d",
                    "; ".join(notes),
                    entry["epoch"],
                )
            return entry["epoch"]
        notes.append(problem)
    if present or notes:
        raise BackupError(
            f"no usable backup in {backup_dir}: {'; '.join(notes) or 'no backup is recorded'}. "
            "To start this workdir's training from scratch, rerun with --restart"
        )
    return 0


def newest_verified(backup_dir) -> int:
    """The epoch of the newest backup whose file has its recorded size and checksum; 0 when
    there is none (what a rerun resumes from, unless that file fails to load)."""
    entries, _, _ = candidates(backup_dir)
    return next((e["epoch"] for e in entries if verify(backup_dir, e) is None), 0)


def clear(backup_dir) -> None:
    """Deletes every backup (`--restart`)."""
    storage.remove(backup_dir)


class AtomicBackup(keras.callbacks.Callback):
    """Saves weights and optimizer state at the end of every epoch, verified (module docstring).

    Args:
        backup_dir: folder of the backups (created when needed); any `tf.io.gfile` path.
    """

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = str(backup_dir)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        data = storage.weights_bytes(self.model)
        entry = {
            "epoch": done,
            "weights": weights_name(done),
            "size": len(data),
            "sha256": storage.sha256(data),
        }
        tf.io.gfile.makedirs(self.backup_dir)
        written = []  # this epoch's files, removed again if the save does not finish
        try:
            path = workdir_layout.join(self.backup_dir, weights_name(done))
            written.append(path)
            storage.write_bytes(path, data)
            problem = verify(self.backup_dir, entry)
            if problem is not None:
                raise BackupError(f"the backup of epoch {done} did not verify: {problem}")
            record = workdir_layout.join(self.backup_dir, record_name(done))
            written.append(record)
            storage.write_text(record, json.dumps(entry))
            entries, _, _ = candidates(self.backup_dir)
            previous = next((e for e in entries if e["epoch"] < done), None)
            if previous is not None:
                previous = {key: previous[key] for key in ENTRY_FIELDS if key in previous}
            state = {**entry, "previous": previous}
            storage.write_text(workdir_layout.join(self.backup_dir, STATE_FILE), json.dumps(state))
        except BaseException:
            for partial in written:
                try:
                    storage.remove(partial)
                except (OSError, tf.errors.OpError):
                    pass  # the error being raised says more
            raise
        keep = {done, previous["epoch"] if previous else done}
        for name in tf.io.gfile.listdir(self.backup_dir):
            match = _WEIGHTS.match(name) or _RECORD.match(name)
            if match and int(match.group(1)) not in keep:
                tf.io.gfile.remove(workdir_layout.join(self.backup_dir, name))
