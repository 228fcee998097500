"""What export and predict need to know about each head: class names and eval preprocessing.

A training workdir holds `model.keras` (a `CoVeRModel`) and `datasets.json`:
`{"<head>": {"class_names": [...], "eval": {<DatasetConfig fields>}}, ...}`. A bare checkpoint
may come without `datasets.json`; every head then gets `default_eval_config` and class names
`class_<i>`.
"""

import dataclasses
import json
import pathlib

import keras

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


def load_model(path) -> keras.Model:
    """Loads a cover_tf `.keras` file (registers cover_tf's classes first)."""
    import cover_tf  # noqa: F401  (registers the serialisable classes)

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    return keras.saving.load_model(path, compile=False)


def load_source(workdir=None, checkpoint=None, datasets=None):
    """(model, {head: HeadSpec}) from a training workdir, or a checkpoint (+ datasets.json).

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
        workdir = pathlib.Path(workdir)
        checkpoint = workdir / MODEL_FILE
        datasets = workdir / DATASETS_FILE
        if not datasets.is_file():
            raise FileNotFoundError(f"workdir {str(workdir)!r} has no {DATASETS_FILE}")
    model = load_model(checkpoint)
    parsed = None
    if datasets is not None:
        parsed = json.loads(pathlib.Path(datasets).read_text())
    return model, head_specs(model, parsed)


def write_workdir(workdir, model, class_names: dict, eval_configs: dict | None = None) -> None:
    """Writes a workdir in training's layout: model.keras + datasets.json (tests, tools).

    Args:
      workdir: folder to create.
      model: a CoVeRModel.
      class_names: {head: [class names]}.
      eval_configs: {head: DatasetConfig}; heads left out get `default_eval_config`.
    """
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    model.save(workdir / MODEL_FILE)
    eval_configs = eval_configs or {}
    datasets = {}
    for head in model.head_names:
        config = eval_configs.get(head) or default_eval_config(head, model.backbone)
        datasets[head] = {
            "class_names": list(class_names[head]),
            "eval": dataclasses.asdict(config),
        }
    (workdir / DATASETS_FILE).write_text(json.dumps(datasets, indent=2))
