"""The training-curve panel of `eval.png` reads Keras' history columns for one head or many,
one point per epoch."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cover_tf.training import charts  # noqa: E402
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


def test_the_chart_plots_one_point_per_epoch(tmp_path, monkeypatch):
    # A history.csv of an earlier version repeats a redone epoch's row: the last one is plotted.
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,top1\n0,3.0,0.1\n1,2.0,0.2\n1,1.5,0.3\n2,1.0,0.4\n")
    plotted = []
    monkeypatch.setattr(charts, "_plot_history", lambda axis, values, heads: plotted.append(values))
    metrics = {"motion/top1": 0.5, "motion/top5": 0.9}
    charts.plot_evaluation(metrics, {"motion": 4}, history, tmp_path / "metrics.png")
    assert plotted[0]["epoch"] == [0.0, 1.0, 2.0]
    assert plotted[0]["loss"] == [3.0, 1.5, 1.0]
    assert plotted[0]["top1"] == [0.1, 0.3, 0.4]
