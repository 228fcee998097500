"""What export and predict need to know about each head: class names and eval preprocessing.

A training workdir (`cover_tf.workdir.Workdir`) holds `model.keras` (a `CoVeRModel`) and
`datasets.json`:
`{"<head>": {"class_names": [...], "eval": {<DatasetConfig fields>}}, ...}`. A bare checkpoint
may come without `datasets.json`; every head then gets `default_eval_config` and class names
`class_<i>`.
"""

import dataclasses
import io
import json
import zipfile

import keras
import tensorflow as tf
from keras.src.saving import saving_lib

from cover_tf import workdir as workdir_layout
from cover_tf.data.dataset_config import DatasetConfig, RandAugmentConfig

MODEL_FILE = workdir_layout.MODEL
DATASETS_FILE = workdir_layout.DATASETS

# DatasetConfig fields that decide what `eval_preprocess` produces: heads that agree on all of
# them share their views (and one backbone pass) in the all-heads signature.
EVAL_FIELDS = (
    "is_image",
    "num_frames",
    "frame_stride",
    "sampling",
    "boundary",
    "crop_size",
    "eval_short_side",
    "eval_clips",
    "eval_crops",
)


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """One head as served: its name, class names (index order) and eval preprocessing config."""

    name: str
    class_names: tuple[str, ...]
    eval_config: DatasetConfig

    @property
    def num_views(self) -> int:
        return self.eval_config.eval_clips * self.eval_config.eval_crops

    def eval_key(self) -> tuple:
        return tuple(getattr(self.eval_config, field) for field in EVAL_FIELDS)


def default_eval_config(head: str, backbone) -> DatasetConfig:
    """The eval preprocessing of a head without `datasets.json`: one centre view at model size."""
    return DatasetConfig(
        name=head,
        builder="-",
        crop_size=backbone.image_size,
        eval_short_side=backbone.image_size,
        num_frames=backbone.num_frames,
        eval_clips=1,
        eval_crops=1,
    )


def eval_config_from_dict(head: str, fields: dict) -> DatasetConfig:
    """A validated DatasetConfig from its fields as JSON holds them (tuples as lists)."""
    known = {field.name for field in dataclasses.fields(DatasetConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(
            f"datasets.json: head {head!r}: unknown eval fields {unknown}; valid: {sorted(known)}"
        )
    fields = dict(fields)
    fields.setdefault("name", head)
    fields.setdefault("builder", "-")
    if fields.get("train_short_side_range") is not None:
        fields["train_short_side_range"] = tuple(fields["train_short_side_range"])
    if isinstance(fields.get("randaugment"), dict):
        fields["randaugment"] = RandAugmentConfig(**fields["randaugment"])
    config = DatasetConfig(**fields)
    config.validate()
    return config


def _check_class_names(head: str, class_names, num_classes: int) -> tuple[str, ...]:
    class_names = tuple(str(name) for name in class_names)
    if len(class_names) != num_classes:
        raise ValueError(
            f"head {head!r} has {num_classes} classes but {len(class_names)} class names"
        )
    for name in class_names:
        if not name or "\n" in name or "\r" in name:
            raise ValueError(f"head {head!r}: class names must be non-empty lines, got {name!r}")
    return class_names


def head_specs(model, datasets: dict | None = None) -> dict[str, HeadSpec]:
    """{head: HeadSpec} for every head of `model`, from the parsed `datasets.json` (or defaults).

    Raises ValueError when `datasets` misses a head of the model, names a head the model lacks,
    or disagrees with the model on a head's class count.
    """
    specs = {}
    if datasets is not None:
        missing = sorted(set(model.head_names) - set(datasets))
        extra = sorted(set(datasets) - set(model.head_names))
        if missing or extra:
            raise ValueError(
                f"datasets.json does not match the model's heads {list(model.head_names)}: "
                f"missing {missing}, unknown {extra}"
            )
    for head in model.head_names:
        num_classes = model.head_classes[head]
        if datasets is None:
            class_names = [f"class_{index}" for index in range(num_classes)]
            config = default_eval_config(head, model.backbone)
        else:
            entry = datasets[head]
            class_names = entry.get("class_names") or [f"class_{i}" for i in range(num_classes)]
            config = eval_config_from_dict(head, entry.get("eval", {}))
        specs[head] = HeadSpec(head, _check_class_names(head, class_names, num_classes), config)
    return specs


class SourceError(ValueError):
    """A model, workdir, datasets.json or export the user named cannot be used (one sentence)."""


def read_text(path, what: str) -> str:
    """A text file's content through tf.io.gfile (local, `gs://`, `ram://`, ...)."""
    path = str(path)
    if not tf.io.gfile.exists(path):
        raise SourceError(f"{what} {path!r} does not exist")
    if tf.io.gfile.isdir(path):
        raise SourceError(f"{what} {path!r} is a directory, not a file")
    with tf.io.gfile.GFile(path, "r") as file:
        return file.read()


def load_model(path) -> keras.Model:
    """Loads a cover_tf `.keras` file from any tf.io.gfile path, without a local copy.

    Keras' safe mode stays on (no code-carrying files). Raises SourceError naming the path when
    it is missing, a folder, not a zip archive (e.g. truncated) or not a cover_tf model.
    """
    import cover_tf  # noqa: F401  (registers the serialisable classes)

    path = str(path)
    if not path.endswith(".keras"):
        raise SourceError(f"the model {path!r} must be a .keras file")
    if not tf.io.gfile.exists(path):
        raise SourceError(f"the model file {path!r} does not exist")
    if tf.io.gfile.isdir(path):
        raise SourceError(f"the model {path!r} is a directory, not a .keras file")
    with tf.io.gfile.GFile(path, "rb") as file:
        data = io.BytesIO(file.read())
    if not zipfile.is_zipfile(data):
        raise SourceError(
            f"the model file {path!r} is not a .keras archive (a zip file): it is truncated or "
            f"another format ({data.getbuffer().nbytes} bytes)"
        )
    try:
        # keras.saving.load_model copies a remote file to local disk first; the file object
        # path of the same loader reads it from memory.
        model = saving_lib.load_model(data, compile=False, safe_mode=True)
    except (zipfile.BadZipFile, OSError, KeyError, EOFError) as error:
        raise SourceError(
            f"the model file {path!r} is damaged ({type(error).__name__}: {error})"
        ) from error
    if not hasattr(model, "head_names") or not hasattr(model, "backbone"):
        raise SourceError(
            f"the model file {path!r} holds a {type(model).__name__}, not a CoVeR model"
        )
    return model


def load_source(workdir=None, checkpoint=None, datasets=None):
    """(model, {head: HeadSpec}) from a training workdir, or a checkpoint (+ datasets.json).

    Paths go through tf.io.gfile (local, `gs://`, `ram://`). Raises SourceError naming the path
    when a file is missing or unreadable.

    Args:
      workdir: a training workdir holding model.keras and datasets.json.
      checkpoint: a `.keras` file (exclusive with `workdir`).
      datasets: optional datasets.json for `checkpoint`.
    """
    if (workdir is None) == (checkpoint is None):
        raise ValueError("give exactly one of workdir or checkpoint")
    if workdir is not None:
        if datasets is not None:
            raise ValueError("datasets is read from the workdir; give it only with checkpoint")
        layout = workdir_layout.Workdir(workdir)
        if not tf.io.gfile.isdir(layout.root):
            raise SourceError(f"the workdir {layout.root!r} does not exist or is not a folder")
        checkpoint, datasets = layout.model, layout.datasets
        if not tf.io.gfile.exists(datasets):
            raise SourceError(
                f"the workdir {layout.root!r} has no {DATASETS_FILE} (written by training); "
                "export a bare model with --checkpoint"
            )
    model = load_model(checkpoint)
    parsed = None
    if datasets is not None:
        try:
            parsed = json.loads(read_text(datasets, "datasets.json"))
        except json.JSONDecodeError as error:
            raise SourceError(f"{str(datasets)!r} is not valid JSON: {error}") from error
    try:
        return model, head_specs(model, parsed)
    except (ValueError, TypeError, AttributeError) as error:
        raise SourceError(f"{str(datasets)!r}: {error}") from error


def write_workdir(workdir, model, class_names: dict, eval_configs: dict | None = None) -> None:
    """Writes a workdir in training's layout: model.keras + datasets.json (tests, tools).

    Args:
      workdir: folder to create (any tf.io.gfile path).
      model: a CoVeRModel.
      class_names: {head: [class names]}.
      eval_configs: {head: DatasetConfig}; heads left out get `default_eval_config`.
    """
    layout = workdir_layout.Workdir(workdir)
    tf.io.gfile.makedirs(layout.root)
    model.save(layout.model)  # Keras writes a remote path from memory, no local copy
    eval_configs = eval_configs or {}
    datasets = {}
    for head in model.head_names:
        config = eval_configs.get(head) or default_eval_config(head, model.backbone)
        datasets[head] = {
            "class_names": list(class_names[head]),
            "eval": dataclasses.asdict(config),
        }
    with tf.io.gfile.GFile(layout.datasets, "w") as file:
        file.write(json.dumps(datasets, indent=2))
