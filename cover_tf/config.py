"""The experiment config: typed dataclasses, loaded from YAML, overridden with `--set a.b=value`.

YAML only sets fields of these dataclasses: an unknown key is an error that names the key and the
valid ones, a value of the wrong type names the key and the expected type, and cross-field checks
live in `ExperimentConfig.validate()`. Dataset blocks are `cover_tf.data.DatasetConfig`s and the
mixing block is a `cover_tf.data.MixingConfig`.
"""

import copy
import dataclasses
import pathlib
import types
import typing

import yaml

from cover_tf.data.dataset_config import DatasetConfig, MixingConfig
from cover_tf.layers import attention_spec
from cover_tf.models.cover_model import HEAD_NAME
from cover_tf.models.variants import decode_variant

OPTIMIZERS = ("adamw", "sgd")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


class ConfigError(ValueError):
    """A config key or value that does not fit the schema; the message names the key."""


@dataclasses.dataclass
class ModelConfig:
    """The TimeSformer backbone and the heads (see `TimeSformerBackbone` for each field).

    `init_checkpoint`: a `.keras` CoVeR model (e.g. from `python -m cover_tf.convert`) whose
    backbone weights initialise training; with `init_heads`, heads whose name and size match are
    loaded too (false: every head starts new, as fine-tuning A->B with a new head does).
    `temporal_init`: "zeros" (the reference's, for image-pretrained models) or "normal" (the
    time embedding and temporal_fc start random, for training from scratch).
    `tubelet_size`: frames each patch token sees (1: TimeSformer's frame-wise patches; 2: each
    token also sees the next frame, a motion cue at the embedding; see `PatchEmbedding`).
    `tubelet_stride`: frames between consecutive tokens' windows along time (1: a token per
    frame; 2: every other frame's window, half the tokens along time).
    """

    variant: str | None = "Ti/16"
    hidden_size: int | None = None
    num_layers: int | None = None
    num_heads: int | None = None
    mlp_dim: int | None = None
    patch_size: int | None = None
    num_frames: int = 8
    image_size: int = 224
    attention_type: str = "divided_space_time"
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    drop_path_rate: float = 0.1
    temporal_on_single_frame: bool = True
    pixel_mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    pixel_std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    head_hidden_dim: int | None = None
    head_dropout_rate: float = 0.0
    remat: bool = False
    temporal_init: str = "zeros"
    tubelet_size: int = 1
    tubelet_stride: int = 1
    init_checkpoint: str | None = None
    init_heads: bool = True


@dataclasses.dataclass
class OptimizerConfig:
    """Optimizer and schedule: linear warmup then cosine decay to `final_learning_rate_ratio`.

    Weight decay (AdamW, or coupled L2 for SGD via AdamW-style exclusion) skips norms, biases and
    the CLS / position / time embeddings. `clip_norm` clips the global gradient norm (0: off).
    `xla_update`: run the whole update as one XLA-compiled function (`xla_fused_updates`; ~4 s
    of compilation per run, +13-17% training speed on 2 CPU threads).
    """

    name: str = "adamw"
    learning_rate: float = 1e-3
    warmup_steps: int = 0
    final_learning_rate_ratio: float = 0.0
    weight_decay: float = 0.05
    momentum: float = 0.9
    clip_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    xla_update: bool = True


@dataclasses.dataclass
class TrainConfig:
    """The training loop.

    `steps`: optimizer steps in all; `steps_per_epoch`: steps between checkpoints, logs and the
    `BackupAndRestore` saves a crashed run resumes from. `precision`: one of `PRECISIONS`.
    `jit_compile`: the whole step through XLA (GPUs, TPUs). `xla_one_frame`: with `jit_compile`
    false, only the forward and backward pass of one-frame (image) batches through XLA, clips on
    TF's kernels (on CPU the faster mix: README "Speed"). `strategy`: `auto` picks TPU when a
    TPU cluster is configured, multi-worker when TF_CONFIG names a cluster, mirrored over the
    visible GPUs, else the default strategy.
    """

    steps: int = 1000
    steps_per_epoch: int = 100
    precision: str = "float32"
    jit_compile: bool = False
    xla_one_frame: bool = False
    strategy: str = "auto"
    seed: int = 0


@dataclasses.dataclass
class EvalConfig:
    """Evaluation at the end of training (and by `python -m cover_tf.evaluate`)."""

    batch_size: int = 8
    max_examples: int | None = None


@dataclasses.dataclass
class ExperimentConfig:
    """A whole experiment: model, datasets (one head each), mixing, optimizer, loop, evaluation.

    `data_dir`: the TFDS data_dir for every dataset block that does not set its own.
    """

    name: str = "experiment"
    data_dir: str | None = None
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    datasets: list[DatasetConfig] = dataclasses.field(default_factory=list)
    mixing: MixingConfig = dataclasses.field(default_factory=MixingConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)

    def validate(self):
        """Cross-field checks; raises ConfigError naming the offending key."""
        _choice("optimizer.name", self.optimizer.name, OPTIMIZERS)
        _choice("train.precision", self.train.precision, PRECISIONS)
        _choice("train.strategy", self.train.strategy, STRATEGIES)
        if not self.datasets:
            raise ConfigError("datasets: give at least one dataset block")
        names = [dataset.name for dataset in self.datasets]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(
                f"datasets: names must be unique (one head each), {duplicates} repeat"
            )
        for key in ("steps", "steps_per_epoch"):
            if getattr(self.train, key) < 1:
                raise ConfigError(f"train.{key} must be >= 1, got {getattr(self.train, key)}")
        if self.optimizer.gradient_accumulation_steps < 1:
            raise ConfigError("optimizer.gradient_accumulation_steps must be >= 1")
        for dataset in self.datasets:
            try:
                dataset.validate()
            except ValueError as error:
                raise ConfigError(f"datasets.{dataset.name}: {error}") from error
            if dataset.data_dir is None:
                dataset.data_dir = self.data_dir
        _validate_model(self.model, self.datasets)
        try:
            self.mixing.validate()
        except ValueError as error:
            raise ConfigError(str(error)) from error
        return self

    def to_dict(self):
        return dataclasses.asdict(self)


def _validate_model(model, datasets):
    """What building the model and its heads will need, checked before anything is written."""
    try:
        spec = attention_spec(model.attention_type)
    except ValueError as error:
        raise ConfigError(f"model.{error}") from error
    sizes = {}
    if model.variant is not None:
        try:
            sizes = decode_variant(model.variant)
        except ValueError as error:
            raise ConfigError(f"model.{error}") from error
    for key in ("hidden_size", "num_layers", "num_heads", "mlp_dim", "patch_size"):
        value = getattr(model, key)
        if value is not None:
            if value < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {value}")
            sizes[key] = value
    missing = [key for key in ("hidden_size", "num_layers", "num_heads") if key not in sizes]
    if missing:
        raise ConfigError(
            f"model.variant: name a variant (e.g. 'B/16') or set model.{', model.'.join(missing)}"
        )
    if sizes["hidden_size"] % sizes["num_heads"]:
        raise ConfigError(
            f"model.num_heads ({sizes['num_heads']}) must divide model.hidden_size "
            f"({sizes['hidden_size']})"
        )
    patch = sizes.get("patch_size", 16)
    source = "model.patch_size" if model.patch_size else f"model.variant {model.variant!r}"
    if model.image_size < 1 or model.image_size % patch:
        raise ConfigError(
            f"model.image_size ({model.image_size}) must be a multiple of the patch size "
            f"{patch} (from {source})"
        )
    for dataset in datasets:
        if dataset.crop_size % patch:
            raise ConfigError(
                f"datasets.{dataset.name}.crop_size ({dataset.crop_size}) must be a multiple of "
                f"the patch size {patch} (from {source}): the patch grid would drop pixels"
            )
    # The time embedding is learned for model.num_frames and interpolated to every clip length.
    if spec.time_embedding and model.num_frames < 1:
        raise ConfigError(f"model.num_frames must be >= 1, got {model.num_frames}")
    if not 0.0 <= model.drop_path_rate < 1.0:
        raise ConfigError(f"model.drop_path_rate must be in [0, 1), got {model.drop_path_rate}")
    if model.temporal_init not in ("zeros", "normal", "sinusoidal"):
        raise ConfigError(
            f"model.temporal_init must be zeros, normal or sinusoidal, got {model.temporal_init!r}"
        )
    if model.tubelet_size < 1:
        raise ConfigError(f"model.tubelet_size must be >= 1, got {model.tubelet_size}")
    if model.tubelet_stride < 1:
        raise ConfigError(f"model.tubelet_stride must be >= 1, got {model.tubelet_stride}")
    if model.remat and (model.dropout_rate or model.attention_dropout_rate):
        raise ConfigError(
            "model.remat cannot replay dropout masks: set model.dropout_rate and "
            "model.attention_dropout_rate to 0, or model.remat to false"
        )
    for dataset in datasets:
        if not HEAD_NAME.match(dataset.name):
            raise ConfigError(
                f"datasets.{dataset.name}: the name keys the dataset's head, metrics and serving "
                "signature: start with a letter, then letters, digits and '_'"
            )
        if dataset.num_classes is not None and dataset.num_classes < 1:
            raise ConfigError(f"datasets.{dataset.name}.num_classes must be >= 1")
    if not model.init_heads and model.init_checkpoint is None:
        raise ConfigError("model.init_heads: false only applies with a model.init_checkpoint")


def _choice(key, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {allowed}, got {value!r}")


def _parse(tp, value, key):
    """`value` (from YAML) as type `tp`; ConfigError naming `key` otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            return _parse(option, value, key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, key)
    if origin is list:
        (item_type,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_parse(item_type, item, f"{key}[{i}]") for i, item in enumerate(value)]
    if origin is tuple:
        item_types = typing.get_args(tp)
        if not isinstance(value, list | tuple) or len(value) != len(item_types):
            raise ConfigError(f"{key} must be a list of {len(item_types)} values, got {value!r}")
        return tuple(_parse(t, v, key) for t, v in zip(item_types, value, strict=True))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {tp}")


def from_dict(cls, data, prefix=""):
    """A `cls` dataclass from a mapping; unknown keys raise ConfigError naming the valid ones."""
    hints = typing.get_type_hints(cls)
    fields = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown config key {where}{unknown[0]!r}; valid keys of {prefix or 'the config'}: "
            f"{sorted(fields)}"
        )
    values = {
        name: _parse(hints[name], value, f"{prefix}.{name}" if prefix else name)
        for name, value in data.items()
    }
    return cls(**values)


def apply_override(data, assignment):
    """Applies `"a.b.c=value"` (value parsed as YAML) to a raw config mapping, in place.

    In `datasets`, a path segment may be a dataset's name or its index:
    `datasets.motion.flip=false`, `datasets.0.weight=2`. `datasets.<name or index>=null` drops
    that dataset (and its head) from the experiment: `--set datasets.ssv2=null` trains a paper
    config without Something-Something-v2, no copy of its YAML needed.
    """
    path, sep, text = assignment.partition("=")
    if not sep or not path:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.steps=100), got {assignment!r}")
    value = yaml.safe_load(text)
    keys = path.strip().split(".")
    node = data
    for depth, key in enumerate(keys[:-1]):
        node = _child(node, key, ".".join(keys[: depth + 1]))
    last = keys[-1]
    if isinstance(node, list):
        if value is not None:
            raise ConfigError(
                f"--set {path}: name a field of the dataset (e.g. {path}.weight=2), or drop the "
                f"dataset with {path}=null"
            )
        del node[_dataset_index(node, last, path)]
        return data
    node[last] = value
    return data


def _dataset_index(node, key, where):
    """The index in the `datasets` list of the block named `key` (or at index `key`)."""
    for index, item in enumerate(node):
        if str(index) == key or (isinstance(item, dict) and item.get("name") == key):
            return index
    names = [item.get("name") for item in node if isinstance(item, dict)]
    raise ConfigError(f"--set {where}: no dataset named {key!r}; datasets are {names}")


def _child(node, key, where):
    if isinstance(node, list):
        return node[_dataset_index(node, key, where)]
    if key not in node or node[key] is None:
        node[key] = {}
    if not isinstance(node[key], dict | list):
        raise ConfigError(f"--set {where}: {where} is a value, not a section")
    return node[key]


def load_config(path=None, overrides=(), base=None, text=None):
    """The validated `ExperimentConfig` of a YAML file (or `base` mapping) plus `--set` overrides.

    `text`: the file's YAML already read (e.g. through `tf.io.gfile` from a `gs://` workdir);
    `path` then only names it in errors.
    """
    data = copy.deepcopy(dict(base or {}))  # overrides edit it in place (e.g. drop a dataset)
    if path is not None or text is not None:
        if text is None:
            text = pathlib.Path(path).read_text()
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of config sections")
        data.update(loaded)
    for assignment in overrides:
        apply_override(data, assignment)
    return from_dict(ExperimentConfig, data).validate()


def dump_config(config, path):
    """Writes the resolved config as YAML (what `load_config` reads back)."""

    def plain(value):
        if isinstance(value, tuple):
            return [plain(item) for item in value]
        if isinstance(value, list):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    pathlib.Path(path).write_text(yaml.safe_dump(plain(config.to_dict()), sort_keys=False))
