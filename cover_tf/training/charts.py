"""Charts of a run: per-dataset test accuracy against chance, and the training curves.

Drawn with matplotlib's Agg backend (no display needed): `python -m cover_tf.train` draws its
final evaluation (`metrics.png`), `python -m cover_tf.evaluate` its own (`eval.png`). Files are
read and written through `tf.io.gfile`, so a workdir may live on any filesystem training takes.
"""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from cover_tf.training import storage  # noqa: E402
from cover_tf.training.history import read_rows  # noqa: E402


def read_history(history_csv):
    """`{column: [float, ...]}` of a run's `history.csv` (`epoch`, `loss`, `<head>_top1`, ...),
    one value per epoch in epoch order: of an epoch with more than one row (written by earlier
    versions, which appended a redone epoch's row) the last (`history.read_rows`).
    """
    columns = {}
    for row in read_rows(history_csv).values():
        for key, value in row.items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                columns.setdefault(key, []).append(float("nan"))
    return columns


def plot_evaluation(metrics, num_classes, history_csv=None, path="eval.png"):
    """Writes a PNG: top-1 / top-5 bars per head with chance (1 / num_classes) marked, and, when
    `history_csv` exists, a second panel with the training loss and each `<head>_top1` per epoch.

    Args:
      metrics: `{"<head>/top1": float, "<head>/top5": float, "<head>/views": int, ...}`.
      num_classes: `{head: K}`; heads are drawn in this order.
      history_csv: path of the run's `history.csv` or None.
      path: the output PNG.
    Returns:
      the output path.
    """
    heads = list(num_classes)
    history = None
    if history_csv is not None and tf.io.gfile.exists(str(history_csv)):
        history = read_history(history_csv)
        if not history.get("epoch"):
            history = None
    panels = 2 if history else 1
    figure, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.8), squeeze=False)
    _plot_accuracy(axes[0, 0], metrics, num_classes, heads)
    if history:
        _plot_history(axes[0, 1], history, heads)
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=100)
    plt.close(figure)
    path = str(path)
    storage.make_parent(path)
    storage.write_bytes(path, png.getvalue())
    return path


def _plot_accuracy(axis, metrics, num_classes, heads):
    positions = np.arange(len(heads))
    width = 0.38
    top1 = [metrics[f"{head}/top1"] for head in heads]
    top5 = [metrics[f"{head}/top5"] for head in heads]
    bars1 = axis.bar(positions - width / 2, top1, width, label="top-1", color="tab:blue")
    bars5 = axis.bar(positions + width / 2, top5, width, label="top-5", color="tab:orange")
    for bars in (bars1, bars5):
        axis.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
    for index, head in enumerate(heads):
        chance = 1.0 / num_classes[head]
        axis.hlines(
            chance,
            index - width - 0.05,
            index + width + 0.05,
            colors="black",
            linestyles="--",
            label="chance (1/K)" if index == 0 else None,
        )
    labels = []
    for head in heads:
        views = metrics.get(f"{head}/views")
        count = metrics.get(f"{head}/num_examples")
        detail = ", ".join(
            part
            for part in (
                f"K={num_classes[head]}",
                f"{views} view{'s' if views != 1 else ''}" if views else "",
                f"n={count}" if count else "",
            )
            if part
        )
        labels.append(f"{head}\n({detail})")
    axis.set_xticks(positions, labels, fontsize=8)
    axis.set_ylim(0, 1.12)
    axis.set_ylabel("accuracy")
    axis.set_title("Test accuracy per dataset (own head, views averaged)")
    axis.legend(loc="upper right", fontsize=8)
    axis.grid(axis="y", alpha=0.3)


def _plot_history(axis, history, heads):
    epochs = [int(epoch) + 1 for epoch in history["epoch"]]
    axis.plot(epochs, history.get("loss", []), color="black", marker="o", label="loss")
    axis.set_xlabel("epoch")
    axis.set_ylabel("training loss")
    axis.grid(alpha=0.3)
    accuracy_axis = axis.twinx()
    for head in heads:
        # Keras drops the output-name prefix when the model has a single head ("top1").
        column = history.get(f"{head}_top1") or (history.get("top1") if len(heads) == 1 else None)
        if column:
            accuracy_axis.plot(epochs, column, marker=".", label=f"{head} top-1 (train)")
    accuracy_axis.set_ylim(0, 1.05)
    accuracy_axis.set_ylabel("training top-1")
    lines, labels = axis.get_legend_handles_labels()
    more_lines, more_labels = accuracy_axis.get_legend_handles_labels()
    axis.legend(lines + more_lines, labels + more_labels, loc="center right", fontsize=8)
    axis.set_title("Training curves (history.csv)")
    if len(epochs) <= 20:
        axis.set_xticks(epochs)
