"""The training-curve panel of `eval.png` reads Keras' history columns for one head or many."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cover_tf.training.charts import _plot_history  # noqa: E402

EPOCHS = {"epoch": [0.0, 1.0], "loss": [2.0, 1.0]}


def curve_labels(history, heads):
    figure, axis = plt.subplots()
    try:
        _plot_history(axis, history, heads)
        return sorted(line.get_label() for ax in figure.axes for line in ax.get_lines())
    finally:
        plt.close(figure)


def test_one_curve_per_head_from_prefixed_columns():
    history = {**EPOCHS, "motion_top1": [0.1, 0.2], "images_top1": [0.3, 0.4]}
    assert curve_labels(history, ["motion", "images"]) == [
        "images top-1 (train)",
        "loss",
        "motion top-1 (train)",
    ]


def test_single_head_runs_log_unprefixed_columns():
    # Keras names a single-output model's metrics "top1", not "<head>_top1".
    history = {**EPOCHS, "top1": [0.1, 0.2]}
    assert curve_labels(history, ["motion"]) == ["loss", "motion top-1 (train)"]
