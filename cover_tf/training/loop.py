"""The main job: build data and model under the strategy, `fit`, evaluate, write the workdir
(its layout: `cover_tf.workdir`)."""

import contextlib
import dataclasses
import json
import re
import sys
import time

import keras
import tensorflow as tf
from absl import logging

from cover_tf import workdir as workdir_layout
from cover_tf.config import ConfigError
from cover_tf.data import mixing, reader
from cover_tf.training import backup, config_change, preflight, storage
from cover_tf.training.charts import plot_evaluation
from cover_tf.training.compile import compile_model
from cover_tf.training.evaluation import evaluate_datasets
from cover_tf.training.history import HistoryCSV, ModelCheckpoint
from cover_tf.training.lock import WorkdirLock
from cover_tf.training.model_factory import build_model
from cover_tf.training.precision import effective_precision
from cover_tf.training.strategy import select_strategy, worker_subdir


class StepTimer(keras.callbacks.Callback):
    """Adds `steps_per_s` (training steps per second of the epoch) to the epoch logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["steps_per_s"] = self.steps / max(time.perf_counter() - self.start, 1e-9)


def prepare_datasets(config, builders: dict | None = None):
    """Resolved dataset configs (`reader.ResolvedDatasetConfig`: num_classes / is_image read from
    the prepared data, builder attached) and the class names, preparing builders that can
    prepare themselves (the embedded synthetic family). Each dataset is resolved here once; the
    configs go to `train_dataset` and `evaluate_datasets` as they are.

    Args:
      config: the `ExperimentConfig`.
      builders: {dataset name: builder} already looked up (`preflight.lookup_builders`).
    """
    builders = builders or {}
    datasets, class_names = [], {}
    for cfg in config.datasets:
        builder = builders.get(cfg.name) or reader.get_builder(cfg.builder, data_dir=cfg.data_dir)
        if not builder.is_prepared():
            logging.info("Preparing %s in %s", cfg.builder, builder.data_dir)
            builder.download_and_prepare()
        builder, cfg = reader.resolve(cfg, builder)
        datasets.append(cfg)
        class_names[cfg.name] = list(builder.info.features["label"].names)
    return datasets, class_names


def run(config, workdir, verbose="auto", restart=False, allow_config_change=False):
    """Trains and evaluates `config` in `workdir`; returns the evaluation metrics.

    Before the workdir is touched: the builders are looked up and the workdir checked
    (`preflight`). Then the workdir is locked (the chief's; `lock`), its config compared
    (`config_change`), with `restart` its training state cleared, and the run goes on from the
    newest usable backup (`backup`). Every workdir file goes through `tf.io.gfile`.

    A write that finds the disk full ends the run with `preflight.WorkdirFull` (every file is
    replaced atomically and a failed backup removes what it wrote, so the workdir keeps its
    verified backups; running the same command again with space resumes from the newest).

    Raises:
      ConfigError, preflight.WorkdirError (WorkdirFull), lock.WorkdirBusy, backup.BackupError:
      a sentence.
    """
    train = config.train
    if train.steps % train.steps_per_epoch:
        raise ConfigError(
            f"train.steps ({train.steps}) must be a multiple of train.steps_per_epoch "
            f"({train.steps_per_epoch})"
        )
    preflight.check_workdir(workdir)
    builders = preflight.lookup_builders(config)
    keras.utils.set_random_seed(train.seed)
    if config.mixing.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = select_strategy(train.strategy)
    files = workdir_layout.Workdir(workdir)
    subdir = worker_subdir(strategy)
    if subdir:  # a non-chief multi-worker task: its own copies, out of the chief's way
        files = files.worker(subdir)
    preflight.create_workdir(files.root)
    # Only the chief claims the workdir; the other workers write under worker_<i>/ of it.
    claim = contextlib.nullcontext() if subdir else WorkdirLock(files.lock, files.root)
    try:
        claim.__enter__()
    except (OSError, tf.errors.OpError) as error:
        if storage.out_of_space(error):
            raise disk_full(error, files) from error
        reason = getattr(error, "message", None) or getattr(error, "strerror", None) or error
        raise preflight.WorkdirError(f"workdir {files.root} is not writable: {reason}") from error
    try:
        if tf.io.gfile.exists(files.config):
            changed = config_change.check(
                storage.read_text(files.config), config, files.config, allow_config_change
            )
            if changed:
                logging.warning("Accepted config changes: %s", ", ".join(changed))
        if restart:
            logging.warning("--restart: clearing the training state of %s", files.root)
            for path in (
                files.backup,
                files.history,
                files.checkpoint,
                files.model,
                files.metrics,
                files.metrics_chart,
            ):
                storage.remove(path)
        storage.write_text(files.config, config_change.config_text(config))
        return _train(config, files, strategy, builders, verbose)
    except Exception as error:
        if storage.out_of_space(error):
            _remove_empty_event_files(files.logs)
            raise disk_full(error, files) from error
        raise
    finally:
        claim.__exit__(None, None, None)


def disk_full(error, files) -> preflight.WorkdirFull:
    """The sentence for a write that found the workdir's disk full: what was being written and
    what the same command, run again once there is space, resumes from."""
    what = _path_written(error)
    if what and what.startswith(files.root + "/"):
        what = what[len(files.root) + 1 :]
    try:
        epoch = backup.newest_verified(files.backup)
    except Exception:  # noqa: BLE001  (a sentence without the epoch rather than a traceback)
        epoch = None
    resume = {
        None: "the newest verified backup",
        0: "the start (no backup was made yet)",
    }.get(epoch, f"the verified backup of epoch {epoch}")
    return preflight.WorkdirFull(
        f"no space left on the disk of workdir {files.root}"
        + (f" (writing {what})" if what else "")
        + f"; free some space and run the same command again: it resumes from {resume}"
    )


def _path_written(error) -> str | None:
    """The file named by the first error of `error`'s chain that names one."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.filename:
            return str(error.filename)
        if isinstance(error, tf.errors.OpError):
            # TF's file errors read "<path>; No space left on device"
            match = re.search(r"(\S+); (No space left|Disk quota)", error.message)
            if match:
                return match.group(1)
        error = error.__cause__ or error.__context__
    return None


def _remove_empty_event_files(logs) -> None:
    """TensorBoard's writer creates its events file before the first write: on a full disk that
    file stays empty. Such files hold no event; they are removed."""
    try:
        for folder, _, names in tf.io.gfile.walk(logs):
            for name in names:
                path = workdir_layout.join(folder, name)
                if "tfevents" in name and tf.io.gfile.stat(path).length == 0:
                    tf.io.gfile.remove(path)
    except tf.errors.OpError:
        pass  # the disk-full sentence is what the user needs


def _train(config, files, strategy, builders, verbose):
    train = config.train
    epochs = train.steps // train.steps_per_epoch
    datasets, class_names = prepare_datasets(config, builders)
    storage.write_text(
        files.datasets,
        json.dumps(
            {
                cfg.name: {
                    "class_names": class_names[cfg.name],
                    "eval": dataclasses.asdict(reader.plain_config(cfg)),
                }
                for cfg in datasets
            },
            indent=1,
        ),
    )
    heads = {cfg.name: cfg.num_classes for cfg in datasets}
    precision = effective_precision(train.precision)
    dtype = None if precision == "float32" else precision
    with strategy.scope():
        model = build_model(config.model, heads, dtype=dtype)
        compile_model(
            model,
            config.optimizer,
            train.steps,
            jit_compile=train.jit_compile,
            xla_one_frame=train.xla_one_frame,
        )
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std

    with strategy.scope():  # the optimizer's slots are built here, under the strategy
        done_epochs = backup.restore(model, files.backup)
    if done_epochs:
        logging.info("Resuming after %d completed epoch(s)", done_epochs)
    # Epoch e's batches are built from (seed, e) directly: no skipped batch is regenerated.
    dataset = mixing.train_dataset(
        datasets,
        config.mixing,
        mean,
        std,
        steps_per_epoch=train.steps_per_epoch,
        first_epoch=done_epochs,
    )
    # The backup last: an epoch it records has its history row and checkpoint already.
    callbacks = [
        StepTimer(),
        HistoryCSV(files.history),
        keras.callbacks.TensorBoard(files.logs, update_freq="epoch"),
        ModelCheckpoint(files.checkpoint),
        backup.AtomicBackup(files.backup),
    ]
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    start = time.perf_counter()
    model.fit(
        dataset,
        epochs=epochs,
        initial_epoch=done_epochs,
        steps_per_epoch=train.steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the input pipeline shuffles; Keras warns that it cannot
    )
    train_seconds = time.perf_counter() - start
    storage.save_model(model, files.model)

    metrics = evaluate_datasets(
        model, datasets, batch_size=config.eval.batch_size, max_examples=config.eval.max_examples
    )
    metrics["train/steps"] = int(model.optimizer.iterations.numpy())
    metrics["train/seconds_this_run"] = round(train_seconds, 1)
    metrics["train/epochs_resumed"] = done_epochs
    metrics["train/replicas"] = strategy.num_replicas_in_sync
    storage.write_text(files.metrics, json.dumps(metrics, indent=1, sort_keys=True))
    num_classes = {cfg.name: cfg.num_classes for cfg in datasets}
    plot_evaluation(metrics, num_classes, files.history, files.metrics_chart)
    return metrics
