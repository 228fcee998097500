"""Checks of a training run that need no workdir: every mistake found here is one sentence.

`lookup_builders` finds each dataset's TFDS builder (no data is read or prepared); `check_workdir`
finds a workdir that is a file or cannot be created or written. `python -m cover_tf.train` runs
both before it touches the workdir.
"""

import os
import re

import tensorflow as tf
import tensorflow_datasets as tfds

from cover_tf.builders import registry
from cover_tf.cli import UserError
from cover_tf.config import ConfigError
from cover_tf.data import reader
from cover_tf.workdir import is_local


class WorkdirError(UserError, RuntimeError):
    """The workdir cannot be used; the message says why."""


class WorkdirFull(WorkdirError):
    """The workdir's filesystem has no space left; the message says what a rerun resumes from."""


def _first_line(error) -> str:
    """TFDS's message without its "Failed to construct dataset ..." prefix and suggestions."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r'^Failed to construct dataset .*?builder_kwargs ".*?": ', "", text)
    return text.split(" Here are ")[0].rstrip(".:")


def _configs_of(name: str) -> list:
    try:
        builder_cls = tfds.builder_cls(name.split("/")[0].split(":")[0])
    except Exception:  # noqa: BLE001  (unknown builder: no configs to list)
        return []
    return sorted(config.name for config in getattr(builder_cls, "BUILDER_CONFIGS", []) or [])


def lookup_builders(config) -> dict:
    """{dataset name: TFDS builder} of every dataset block; ConfigError naming a bad builder."""
    builders = {}
    for cfg in config.datasets:
        try:
            builders[cfg.name] = reader.get_builder(cfg.builder, data_dir=cfg.data_dir)
        except (
            FileNotFoundError,
            ValueError,
            AssertionError,
            tfds.core.registered.DatasetNotFoundError,
        ) as error:
            configs = _configs_of(cfg.builder)
            known = f" (its configs: {', '.join(configs)})" if configs else ""
            if isinstance(error, registry.UnknownBuilderError):
                known = ""  # the registry's sentence already lists the valid names
            raise ConfigError(
                f"datasets.{cfg.name}.builder {cfg.builder!r} cannot be used: "
                f"{_first_line(error)}{known}"
            ) from error
    return builders


def check_workdir(root: str) -> None:
    """Raises WorkdirError when `root` is a file, or (local disk) cannot be created or written."""
    root = str(root)
    try:
        exists, isdir = tf.io.gfile.exists(root), tf.io.gfile.isdir(root)
    except tf.errors.OpError as error:
        raise WorkdirError(f"workdir {root} cannot be read: {error.message}") from error
    if exists and not isdir:
        raise WorkdirError(f"workdir {root} is a file, not a folder; give another --workdir")
    if not is_local(root):
        return  # object stores: the lock's create is the write check
    path = os.path.abspath(root)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise WorkdirError(f"workdir {root} cannot be created: {path} is a file")
    if not os.access(path, os.W_OK | os.X_OK):
        what = "is read-only" if path == os.path.abspath(root) else f"cannot be created in {path}"
        raise WorkdirError(f"workdir {root} {what} (no write permission)")


def create_workdir(root: str) -> None:
    """Creates the workdir folder; WorkdirError with one sentence when the filesystem refuses."""
    try:
        tf.io.gfile.makedirs(str(root))
    except (tf.errors.OpError, OSError) as error:
        reason = getattr(error, "message", None) or getattr(error, "strerror", None) or error
        raise WorkdirError(f"workdir {root} cannot be created: {reason}") from error
