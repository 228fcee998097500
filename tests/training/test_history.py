"""history.csv holds one row per epoch: a redone epoch replaces its row, it does not add one."""

import csv

from cover_tf.training.charts import read_history
from cover_tf.training.history import HistoryCSV, read_rows


def epoch_end(path, epoch, loss):
    HistoryCSV(str(path)).on_epoch_end(epoch, {"loss": loss, "motion_top1": 0.5})


def table(path):
    return [(row["epoch"], row["loss"]) for row in csv.DictReader(path.open())]


def test_epochs_append_in_order(tmp_path):
    path = tmp_path / "history.csv"
    for epoch in range(3):
        epoch_end(path, epoch, 3.0 - epoch)
    assert table(path) == [("0", "3.0"), ("1", "2.0"), ("2", "1.0")]
    assert path.read_text().splitlines()[0] == "epoch,loss,motion_top1"


def test_a_redone_epoch_replaces_its_row(tmp_path):
    # A job killed after epoch 1's row but before its backup resumes from epoch 1's start.
    path = tmp_path / "history.csv"
    epoch_end(path, 0, 3.0)
    epoch_end(path, 1, 2.0)
    epoch_end(path, 1, 2.5)  # the rerun redoes epoch 1
    epoch_end(path, 2, 1.5)
    assert table(path) == [("0", "3.0"), ("1", "2.5"), ("2", "1.5")]


def test_rows_of_an_abandoned_run_after_the_redone_epoch_go(tmp_path):
    # Backups of epochs 3 and 4 damaged: the run falls back to the end of epoch 2 (index 1)
    # and redoes epoch index 2; the rows the abandoned run wrote for 2..4 are not its history.
    path = tmp_path / "history.csv"
    for epoch in range(5):
        epoch_end(path, epoch, 10.0 + epoch)
    epoch_end(path, 2, 1.0)
    assert table(path) == [("0", "10.0"), ("1", "11.0"), ("2", "1.0")]


def test_a_file_with_repeated_rows_is_read_and_rewritten_once_per_epoch(tmp_path):
    # What earlier versions wrote: 11 rows for 8 epochs, the last of each epoch the valid one.
    path = tmp_path / "history.csv"
    losses = [(0, 8), (1, 7), (2, 6), (2, 5.5), (3, 5), (4, 4), (5, 3), (5, 2.5), (6, 2)]
    losses += [(6, 1.5), (7, 1)]
    path.write_text("epoch,loss\n" + "".join(f"{e},{v}\n" for e, v in losses))
    assert list(read_rows(path)) == list(range(8))
    assert read_rows(path)[5]["loss"] == "2.5"
    history = read_history(path)  # what metrics.png plots
    assert history["epoch"] == [float(e) for e in range(8)]
    assert history["loss"] == [8, 7, 5.5, 5, 4, 2.5, 1.5, 1]
    epoch_end(path, 8, 0.5)
    assert [epoch for epoch, _ in table(path)] == [str(e) for e in range(9)]
    assert table(path)[2] == ("2", "5.5")
