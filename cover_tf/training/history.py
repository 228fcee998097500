"""Per-epoch records on any `tf.io.gfile` filesystem: `history.csv` and `checkpoint.keras`.

Keras' `CSVLogger` appends to an open file (object stores such as `gs://` cannot append) and
checks `file.closed`, which `tf.io.gfile.GFile` lacks. Here each epoch's row is added by writing
the whole file anew (`storage.write_text`), so the file on storage is always whole epochs.

An epoch is redone after a resume from an older backup (a job killed after the epoch's row but
before its backup, a damaged backup, a full disk): its row replaces the one written before, and
rows of later epochs (of the run that was abandoned) go, so the file holds one row per epoch.
"""

import csv
import io

import keras
import tensorflow as tf

from cover_tf.training import storage


def _cell(value):
    if hasattr(value, "numpy"):
        value = value.numpy()
    if hasattr(value, "item"):
        value = value.item()
    return value


class ModelCheckpoint(keras.callbacks.Callback):
    """Saves the whole model to `path` at every epoch end (`storage.save_model`).

    Args:
        path: the `.keras` file (any `tf.io.gfile` path).
    """

    def __init__(self, path):
        super().__init__()
        self.path = str(path)

    def on_epoch_end(self, epoch, logs=None):
        storage.save_model(self.model, self.path)


class HistoryCSV(keras.callbacks.Callback):
    """Writes `epoch,<metric>,...` rows (the columns of Keras' `CSVLogger`) at every epoch end.

    Rows of earlier epochs are kept (a resumed run continues the file); the row of this epoch
    and any of later epochs are replaced by this epoch's (module docstring). The header is the
    union of the columns seen.

    Args:
        path: the CSV file (any `tf.io.gfile` path).
    """

    def __init__(self, path):
        super().__init__()
        self.path = str(path)

    def on_epoch_end(self, epoch, logs=None):
        rows = read_rows(self.path) if tf.io.gfile.exists(self.path) else {}
        rows = {e: row for e, row in rows.items() if e < epoch}
        rows[epoch] = {"epoch": epoch, **{key: _cell(value) for key, value in (logs or {}).items()}}
        columns = ["epoch"] + sorted({key for row in rows.values() for key in row} - {"epoch"})
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[e] for e in sorted(rows))
        storage.write_text(self.path, text.getvalue())


def read_rows(path) -> dict:
    """{epoch: row} of a `history.csv`, in epoch order; of an epoch written more than once (files
    of earlier versions appended a redone epoch's row) the last row. Rows without an epoch are
    left out."""
    rows = {}
    for row in csv.DictReader(io.StringIO(storage.read_text(str(path)))):
        try:
            epoch = int(float(row.get("epoch") or ""))
        except ValueError:
            continue
        rows.pop(epoch, None)
        rows[epoch] = {key: value for key, value in row.items() if key is not None}
    return dict(sorted(rows.items()))
