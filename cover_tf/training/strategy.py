"""Choosing the `tf.distribute` strategy."""

import json
import os

import tensorflow as tf
from absl import logging


def _tf_config_workers():
    """Number of tasks in the cluster TF_CONFIG describes (0 when unset)."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return 0
    cluster = json.loads(text).get("cluster", {})
    return sum(len(tasks) for tasks in cluster.values())


def worker_subdir(strategy):
    """`None` on the chief (or without a cluster), else `"<task type>_<index>"`.

    Every multi-worker task must run the same saves (reading synchronised variables is a
    collective op), so non-chief workers write their copies under this subfolder of the workdir
    instead of skipping them, the usual Keras pattern; the chief alone writes the workdir itself.
    Who the chief is (the `chief` task, or worker 0 without one) is the strategy's own answer,
    `should_checkpoint`.
    """
    if strategy.extended.should_checkpoint:
        return None
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type}_{resolver.task_id}"


def select_strategy(name="auto"):
    """A `tf.distribute.Strategy` by name.

    Args:
        name: `"auto"` (TPU when a TPU cluster is configured through TPU_NAME, multi-worker when
            TF_CONFIG names a cluster of more than one task, mirrored over the GPUs when there
            are several, else the default strategy), `"default"`, `"mirrored"`,
            `"multi_worker"` or `"tpu"`.
    """
    if name == "auto":
        if os.environ.get("TPU_NAME"):
            name = "tpu"
        elif _tf_config_workers() > 1:
            name = "multi_worker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        # Every GPU; without GPUs, every logical CPU device (tests split the CPU in two).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
    elif name == "multi_worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(os.environ.get("TPU_NAME", ""))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    else:
        raise ValueError(
            f"strategy must be one of auto, default, mirrored, multi_worker, tpu; got {name!r}"
        )
    logging.info("Strategy %s with %d replica(s)", name, strategy.num_replicas_in_sync)
    return strategy
