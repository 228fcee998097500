"""Workdir files on any `tf.io.gfile` filesystem (local disk, `gs://`, `ram://`, ...).

Atomic steps are "write a new file, then switch a pointer": `write_text` (`write_bytes`) replaces
a small file (a pointer, a config, a chart) so that a reader sees the old or the new content,
never a part:

- local disk: write a sibling temp file, then `os.replace` (atomic on POSIX);
- object stores (`gs://`, `s3://`): one upload of the whole object, which the store makes
  visible all at once (an object store has no atomic rename, and none is assumed).

A write that fails (a full disk, a signal) removes its temp file, so no `*.partial` file stays.

Models and backups are serialised in memory first (`model_bytes`, `weights_bytes`) and then
written like any other file: h5py is never given a file on a disk that can fill. HDF5 writes its
cached objects when they are closed, so on a full disk h5py reports each failed write as an
ignored exception and its `File.close()` then crashes the process (SIGSEGV; h5py 3.16 with
HDF5 2.0.0): nothing Python can catch. An in-memory HDF5 image costs one copy of the weights
(and optimizer state) in RAM for the length of a save.
"""

import contextlib
import errno
import hashlib
import io
import os
import uuid

import tensorflow as tf

from cover_tf.workdir import is_local

# errno values and TF status texts of a filesystem that has no room left.
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded")


def read_text(path: str) -> str:
    with tf.io.gfile.GFile(path) as file:
        return file.read()


def write_text(path: str, text: str) -> None:
    """Replaces `path` by `text` atomically (module docstring)."""
    _replace(path, text, "w")


def write_bytes(path: str, data: bytes) -> None:
    """Replaces `path` by `data` atomically (module docstring)."""
    _replace(path, data, "wb")


def _replace(path: str, content, mode: str) -> None:
    if is_local(path):
        partial = f"{path}.{uuid.uuid4().hex}.partial"
        try:
            with open(partial, mode) as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.remove(partial)
            if isinstance(error, OSError) and error.filename is None:
                # write() and close() name no file: name the one being written.
                raise OSError(error.errno, error.strerror, path) from error
            raise
    else:
        clear_for_writing(path)
        with tf.io.gfile.GFile(path, mode) as file:
            file.write(content)


def out_of_space(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from or while handling, is a full filesystem:
    an OSError with ENOSPC / EDQUOT, or a TF error saying so (TensorBoard's writer)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
            return True
        if isinstance(error, tf.errors.OpError) and any(t in error.message for t in _FULL_TEXTS):
            return True
        error = error.__cause__ or error.__context__
    return False


def model_bytes(model) -> bytes:
    """The `.keras` file of `model` (what `model.save` writes), made in memory."""
    from keras.src.saving import saving_lib  # Keras 3.15: `model.save` takes no file object

    buffer = io.BytesIO()
    saving_lib.save_model(model, buffer)
    return buffer.getvalue()


def weights_bytes(model) -> bytes:
    """The `.weights.h5` file of `model` (what `model.save_weights` writes: weights and
    optimizer state), made in memory; `model.load_weights` reads it back from a file."""
    # Keras 3.15's `save_weights_only` with an in-memory store: `model.save_weights` takes
    # only a path, and h5py must not write on a disk that can fill (module docstring).
    from keras.src.saving import saving_lib

    if not model.built:
        raise ValueError("the model has to be built before its weights are saved")
    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    saving_lib._save_state(
        model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set()
    )
    store.close()
    return buffer.getvalue()


def clear_for_writing(path: str) -> None:
    """Removes `path` on TF's `ram://` filesystem, whose writes append to an existing file
    instead of replacing it (TF 2.20); elsewhere a write replaces the file and this does nothing.
    """
    if str(path).startswith("ram://") and tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)


def make_parent(path: str) -> None:
    """Creates the folder `path` goes in (and its parents) if it does not exist."""
    parent = str(path).rpartition("/")[0]
    if parent:
        tf.io.gfile.makedirs(parent)


def save_model(model, path: str) -> None:
    """`model.save(path)`, replacing `path` atomically (`model_bytes`, `write_bytes`)."""
    write_bytes(path, model_bytes(model))


def size_and_sha256(path: str) -> tuple[int, str]:
    """(bytes, hex sha256) of a file, read back through `tf.io.gfile`."""
    digest, size = hashlib.sha256(), 0
    with tf.io.gfile.GFile(path, "rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remove(path: str) -> None:
    """Removes a file or a folder tree if it exists."""
    if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)
