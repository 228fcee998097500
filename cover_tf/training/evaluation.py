"""Multi-view evaluation: every dataset through its own head, softmax averaged over the views
(`cover_tf.models.multiview`, the functions serving and predict use too)."""

import time

import numpy as np
import tensorflow as tf
from absl import logging

from cover_tf.data import input_pipeline
from cover_tf.models import multiview


def evaluate_dataset(model, cfg, mean, std, batch_size=8, max_examples=None, builder=None):
    """Top-1 / top-5 of one dataset's eval split through its own head.

    Examples without a label (label -1, e.g. Kinetics' test split) are skipped. Returns
    `{"<name>/top1", "<name>/top5", "<name>/num_examples", "<name>/views", "<name>/seconds"}`.
    """
    dataset = input_pipeline.eval_dataset(cfg, mean, std, batch_size, builder=builder)
    if max_examples:
        dataset = dataset.unbatch().take(max_examples).batch(batch_size)
    predict = tf.function(
        lambda views: multiview.view_probabilities(model, cfg.name, views), reduce_retracing=True
    )
    top1 = top5 = count = 0
    views_per_example = None
    start = time.perf_counter()
    for views, labels in dataset:
        labels = labels.numpy()
        keep = labels >= 0
        if not keep.any():
            continue
        views_per_example = int(views.shape[1])
        probabilities = predict(views).numpy()[keep]
        labels = labels[keep]
        ranked = np.argsort(-probabilities, axis=-1)[:, :5]
        top1 += int(np.sum(ranked[:, 0] == labels))
        top5 += int(np.sum(np.any(ranked == labels[:, None], axis=-1)))
        count += len(labels)
    seconds = time.perf_counter() - start
    if count == 0:
        raise ValueError(f"{cfg.name}: split {cfg.eval_split!r} holds no labelled example")
    metrics = {
        f"{cfg.name}/top1": top1 / count,
        f"{cfg.name}/top5": top5 / count,
        f"{cfg.name}/num_examples": count,
        f"{cfg.name}/views": views_per_example,
        f"{cfg.name}/seconds": round(seconds, 2),
    }
    logging.info("Evaluation %s", metrics)
    return metrics


def evaluate_datasets(model, dataset_configs, batch_size=8, max_examples=None):
    """`evaluate_dataset` for every dataset config, with the model's own normalization."""
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std
    metrics = {}
    for cfg in dataset_configs:
        metrics.update(evaluate_dataset(model, cfg, mean, std, batch_size, max_examples))
    return metrics
