"""The main job: build data and model under the strategy, `fit`, evaluate, write the workdir
(its layout: `cover_tf.workdir`)."""

import dataclasses
import json
import pathlib
import sys
import time

import keras
from absl import logging

from cover_tf import workdir as workdir_layout
from cover_tf.config import ConfigError, dump_config
from cover_tf.data import mixing, reader
from cover_tf.training import backup
from cover_tf.training.compile import compile_model
from cover_tf.training.evaluation import evaluate_datasets
from cover_tf.training.model_factory import build_model
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


def prepare_datasets(config):
    """Dataset configs with `num_classes` / `is_image` read from the prepared data, and the class
    names, preparing builders that can prepare themselves (the embedded synthetic family)."""
    datasets, class_names = [], {}
    for cfg in config.datasets:
        builder = reader.get_builder(cfg.builder, data_dir=cfg.data_dir)
        if not builder.is_prepared():
            logging.info("Preparing %s in %s", cfg.builder, builder.data_dir)
            builder.download_and_prepare()
        builder, cfg = reader.resolve(cfg, builder)
        datasets.append(cfg)
        class_names[cfg.name] = list(builder.info.features["label"].names)
    return datasets, class_names


def run(config, workdir, verbose="auto"):
    """Trains and evaluates `config` in `workdir`; returns the evaluation metrics."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    train = config.train
    if train.steps % train.steps_per_epoch:
        raise ConfigError(
            f"train.steps ({train.steps}) must be a multiple of train.steps_per_epoch "
            f"({train.steps_per_epoch})"
        )
    epochs = train.steps // train.steps_per_epoch
    keras.utils.set_random_seed(train.seed)
    strategy = select_strategy(train.strategy)
    subdir = worker_subdir(strategy)
    if subdir:  # a non-chief multi-worker task: its own copies, out of the chief's way
        workdir = workdir / subdir
        workdir.mkdir(parents=True, exist_ok=True)
    files = workdir_layout.Workdir(workdir)
    dump_config(config, files.config)

    datasets, class_names = prepare_datasets(config)
    pathlib.Path(files.datasets).write_text(
        json.dumps(
            {
                cfg.name: {"class_names": class_names[cfg.name], "eval": dataclasses.asdict(cfg)}
                for cfg in datasets
            },
            indent=1,
        )
    )
    heads = {cfg.name: cfg.num_classes for cfg in datasets}
    dtype = None if train.precision == "float32" else train.precision
    with strategy.scope():
        model = build_model(config.model, heads, dtype=dtype)
        compile_model(model, config.optimizer, train.steps, jit_compile=train.jit_compile)
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std

    backup_dir = files.backup
    done_epochs = backup.restore(model, backup_dir)
    dataset = mixing.train_dataset(datasets, config.mixing, mean, std)
    if done_epochs:
        # Weights and optimizer state come back from the backup; the data stream resumes where
        # the interrupted run was, so a deterministic pipeline replays the same batches.
        logging.info("Resuming after %d completed epoch(s)", done_epochs)
        dataset = dataset.skip(done_epochs * train.steps_per_epoch)
    callbacks = [
        backup.AtomicBackup(backup_dir),
        StepTimer(),
        keras.callbacks.CSVLogger(files.history, append=True),
        keras.callbacks.TensorBoard(files.logs, update_freq="epoch"),
        keras.callbacks.ModelCheckpoint(files.checkpoint),
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
    )
    train_seconds = time.perf_counter() - start
    model.save(files.model)

    metrics = evaluate_datasets(
        model, datasets, batch_size=config.eval.batch_size, max_examples=config.eval.max_examples
    )
    metrics["train/steps"] = int(model.optimizer.iterations.numpy())
    metrics["train/seconds_this_run"] = round(train_seconds, 1)
    metrics["train/epochs_resumed"] = done_epochs
    metrics["train/replicas"] = strategy.num_replicas_in_sync
    pathlib.Path(files.metrics).write_text(json.dumps(metrics, indent=1, sort_keys=True))
    return metrics
