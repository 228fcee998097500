"""Workdir files on any `tf.io.gfile` filesystem (local disk, `gs://`, `ram://`, ...).

Atomic steps are "write a new file, then switch a pointer": `write_text` (`write_bytes`) replaces
a small file (a pointer, a config, a chart) so that a reader sees the old or the new content,
never a part:

- local disk: write a sibling temp file, then `os.replace` (atomic on POSIX);
- object stores (`gs://`, `s3://`): one upload of the whole object, which the store makes
  visible all at once (an object store has no atomic rename, and none is assumed).
"""

import hashlib
import os
import uuid

import tensorflow as tf

from cover_tf.workdir import is_local


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
        with open(partial, mode) as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    else:
        clear_for_writing(path)
        with tf.io.gfile.GFile(path, mode) as file:
            file.write(content)


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
    """`model.save(path)` (Keras writes URLs through `tf.io.gfile` itself)."""
    clear_for_writing(path)
    model.save(path)


def size_and_sha256(path: str) -> tuple[int, str]:
    """(bytes, hex sha256) of a file, read back through `tf.io.gfile`."""
    digest, size = hashlib.sha256(), 0
    with tf.io.gfile.GFile(path, "rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def remove(path: str) -> None:
    """Removes a file or a folder tree if it exists."""
    if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)
