"""Per-epoch records on any `tf.io.gfile` filesystem: `history.csv` and `checkpoint.keras`.

Keras' `CSVLogger` appends to an open file (object stores such as `gs://` cannot append) and
checks `file.closed`, which `tf.io.gfile.GFile` lacks. Here each epoch's row is added by writing
the whole file anew (`storage.write_text`), so the file on storage is always whole epochs.
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

    Rows of an earlier run are kept (a resumed run continues the file); the header is the
    union of the columns seen.

    Args:
        path: the CSV file (any `tf.io.gfile` path).
    """

    def __init__(self, path):
        super().__init__()
        self.path = str(path)

    def on_epoch_end(self, epoch, logs=None):
        rows = []
        if tf.io.gfile.exists(self.path):
            rows = list(csv.DictReader(io.StringIO(storage.read_text(self.path))))
        rows.append({"epoch": epoch, **{key: _cell(value) for key, value in (logs or {}).items()}})
        columns = ["epoch"] + sorted({key for row in rows for key in row} - {"epoch"})
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        storage.write_text(self.path, text.getvalue())
