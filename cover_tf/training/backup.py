"""Crash-safe training state: weights and optimizer saved atomically at every epoch end.

Keras' `BackupAndRestore` overwrites its weights file in place and writes its epoch file after
it, so a `kill -9` during a save leaves a corrupt HDF5 file or an epoch count that does not
match the weights (seen in this project's kill/resume test). Here each epoch's state goes to a
new file and a small JSON pointer is replaced atomically (`os.replace`) only once that file is
complete, so the state on disk is always one whole epoch.
"""

import json
import os
import pathlib

import keras

STATE_FILE = "state.json"


def read_state(backup_dir):
    """`{"epoch": completed epochs, "weights": file name}` of a backup dir, or None."""
    path = pathlib.Path(backup_dir) / STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def restore(model, backup_dir):
    """Loads the last complete state into a compiled model; returns the completed epochs."""
    state = read_state(backup_dir)
    if state is None:
        return 0
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(pathlib.Path(backup_dir) / state["weights"])
    return state["epoch"]


class AtomicBackup(keras.callbacks.Callback):
    """Saves the model's weights and optimizer state at the end of every epoch, atomically.

    Args:
        backup_dir: folder of the state files (created when needed).
    """

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = pathlib.Path(backup_dir)

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch_{epoch + 1:05d}.weights.h5"
        partial = self.backup_dir / f"partial_{name}"
        self.model.save_weights(partial)
        os.replace(partial, self.backup_dir / name)
        pointer = self.backup_dir / f"{STATE_FILE}.partial"
        pointer.write_text(json.dumps({"epoch": epoch + 1, "weights": name}))
        os.replace(pointer, self.backup_dir / STATE_FILE)
        for old in self.backup_dir.glob("*.weights.h5"):
            if old.name != name:
                old.unlink()
