"""A training workdir's layout: the one place that names its files.

`python -m cover_tf.train` writes a workdir; `evaluate`, `export` and `predict` read it. Every
module that touches a workdir file gets its path from `Workdir`, so renaming a file is one edit.

    config.yaml        the resolved experiment config
    datasets.json      {head: {"class_names": [...], "eval": DatasetConfig fields}}
    backup/            crash-safe training state (weights + optimizer) of the last good epochs
    checkpoint.keras   the model at the end of the last epoch
    model.keras        the final model
    history.csv        per-epoch losses and metrics (`<head>_top1` ...), steps/s; one row an epoch
    logs/              TensorBoard
    metrics.json       final per-dataset evaluation (`<head>/top1`, `<head>/top5`, ...)
    metrics.png        its chart: accuracy against chance per dataset, the training curves
    eval_metrics.json  `python -m cover_tf.evaluate`'s metrics
    eval.png           `python -m cover_tf.evaluate`'s chart
    LOCK               the running job's claim on the workdir (owner host and pid)
    worker_<i>/        non-chief multi-worker tasks' copies of all the above (chief: the workdir)

Paths are strings joined with "/", so a workdir may live on any filesystem `tf.io.gfile` reads
(`gs://bucket/run`, `ram://run`), not only on the local disk.
"""

import dataclasses

CONFIG = "config.yaml"
DATASETS = "datasets.json"
BACKUP = "backup"
CHECKPOINT = "checkpoint.keras"
MODEL = "model.keras"
HISTORY = "history.csv"
LOGS = "logs"
METRICS = "metrics.json"
METRICS_CHART = "metrics.png"
EVAL_METRICS = "eval_metrics.json"
EVAL_CHART = "eval.png"
LOCK = "LOCK"


def join(root, *names: str) -> str:
    """`root/name/...` as a string, for local paths and URLs (`gs://`, `ram://`) alike."""
    path = str(root).rstrip("/")
    for name in names:
        path = f"{path}/{name}"
    return path


def is_local(path) -> bool:
    """True for a local path, False for a `tf.io.gfile` URL (`gs://`, `ram://`, ...)."""
    return "://" not in str(path)


@dataclasses.dataclass(frozen=True)
class Workdir:
    """The files of one training workdir, as path strings.

    Args:
        root: the workdir (a local path or a `tf.io.gfile` URL).
    """

    root: str

    def __post_init__(self):
        object.__setattr__(self, "root", str(self.root).rstrip("/") or "/")

    def path(self, name: str) -> str:
        return join(self.root, name)

    @property
    def config(self) -> str:
        return self.path(CONFIG)

    @property
    def datasets(self) -> str:
        return self.path(DATASETS)

    @property
    def backup(self) -> str:
        return self.path(BACKUP)

    @property
    def checkpoint(self) -> str:
        return self.path(CHECKPOINT)

    @property
    def model(self) -> str:
        return self.path(MODEL)

    @property
    def history(self) -> str:
        return self.path(HISTORY)

    @property
    def logs(self) -> str:
        return self.path(LOGS)

    @property
    def metrics(self) -> str:
        return self.path(METRICS)

    @property
    def metrics_chart(self) -> str:
        return self.path(METRICS_CHART)

    @property
    def eval_metrics(self) -> str:
        return self.path(EVAL_METRICS)

    @property
    def eval_chart(self) -> str:
        return self.path(EVAL_CHART)

    @property
    def lock(self) -> str:
        return self.path(LOCK)

    def worker(self, subdir: str) -> "Workdir":
        """A non-chief multi-worker task's own copy of the layout, under this workdir."""
        return Workdir(self.path(subdir))
