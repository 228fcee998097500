"""Reading prepared TFDS data: builders, what they hold, and raw examples with undecoded frames.

A raw example is `{"frames": tf.string [T_in] JPEGs, or uint8 [T_in, H, W, 3], "label": int64}`;
images are 1-frame sequences. JPEGs stay encoded so that only the sampled frames are decoded later.
"""

import dataclasses
import time
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from cover_tf.data import video_ops
from cover_tf.data.dataset_config import DatasetConfig


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What the pipeline needs to know about a prepared dataset.

    Attributes:
      frames_key: "video" or "image", the feature holding the pixels.
      is_image: True for image datasets (1-frame clips).
      is_jpeg: pixels stored as JPEG (decoded lazily) rather than another image format.
      num_classes: number of classes of the "label" ClassLabel.
      split_sizes: {split name: number of examples}.
    """

    frames_key: str
    is_image: bool
    is_jpeg: bool
    num_classes: int
    split_sizes: dict


@dataclasses.dataclass
class ResolvedDatasetConfig(DatasetConfig):
    """A `DatasetConfig` checked against its prepared data, carrying what the check read.

    `num_classes` and `is_image` are filled from the data. The pipelines (`mixing.train_dataset`,
    `input_pipeline`, evaluation) take it as it is, so a dataset is resolved once per run.

    Attributes:
      tfds_builder: the dataset's TFDS builder instance.
      source: its `SourceInfo`.
    """

    tfds_builder: Any = dataclasses.field(default=None, repr=False, compare=False)
    source: SourceInfo | None = dataclasses.field(default=None, repr=False, compare=False)


def plain_config(cfg: DatasetConfig) -> DatasetConfig:
    """The `DatasetConfig` fields of a (resolved) config, e.g. for writing `datasets.json`."""
    return DatasetConfig(
        **{field.name: getattr(cfg, field.name) for field in dataclasses.fields(DatasetConfig)}
    )


def get_builder(builder, data_dir: str | None = None) -> tfds.core.DatasetBuilder:
    """A TFDS builder from an instance (returned as is) or a name ("kinetics/400").

    Names go through `cover_tf.builders.registry.get_builder` when that package is installed, so
    that this project's builders are registered, and otherwise straight to `tfds.builder`.
    """
    if isinstance(builder, tfds.core.DatasetBuilder):
        return builder
    try:
        from cover_tf.builders import registry
    except ImportError:
        return tfds.builder(builder, data_dir=data_dir)
    return registry.get_builder(builder, data_dir=data_dir)


def source_info(builder: tfds.core.DatasetBuilder) -> SourceInfo:
    """Reads the feature layout, class count and split sizes from a builder's DatasetInfo."""
    features = builder.info.features
    if "video" in features:
        frames_key, is_image = "video", False
        encoding = features["video"].feature.encoding_format
    elif "image" in features:
        frames_key, is_image = "image", True
        encoding = features["image"].encoding_format
    else:
        raise ValueError(
            f"{builder.name}: features must hold 'video' or 'image', got {sorted(features)}"
        )
    return SourceInfo(
        frames_key=frames_key,
        is_image=is_image,
        is_jpeg=encoding == "jpeg",
        num_classes=features["label"].num_classes,
        split_sizes={name: split.num_examples for name, split in builder.info.splits.items()},
    )


def resolve(cfg: DatasetConfig, builder=None) -> tuple[tfds.core.DatasetBuilder, DatasetConfig]:
    """The builder of a dataset and its `ResolvedDatasetConfig` (num_classes, is_image filled).

    A config that is already resolved comes back as it is, with its own builder (no I/O).

    Args:
      cfg: the dataset's config.
      builder: a builder instance or name overriding `cfg.builder` (tests, benchmarks).
    Raises:
      ValueError: when an explicit num_classes / is_image contradicts the stored data.
    """
    if isinstance(cfg, ResolvedDatasetConfig) and cfg.tfds_builder is not None:
        if builder is None or builder is cfg.tfds_builder:
            return cfg.tfds_builder, cfg
    builder = get_builder(builder if builder is not None else cfg.builder, data_dir=cfg.data_dir)
    info = source_info(builder)
    if cfg.num_classes is not None and cfg.num_classes != info.num_classes:
        raise ValueError(
            f"{cfg.name}.num_classes is {cfg.num_classes} but {builder.name} has "
            f"{info.num_classes} classes"
        )
    if cfg.is_image is not None and cfg.is_image != info.is_image:
        raise ValueError(
            f"{cfg.name}.is_image is {cfg.is_image} but {builder.name} stores {info.frames_key}s"
        )
    fields = {field.name: getattr(cfg, field.name) for field in dataclasses.fields(DatasetConfig)}
    fields.update(num_classes=info.num_classes, is_image=info.is_image)
    return builder, ResolvedDatasetConfig(**fields, tfds_builder=builder, source=info)


def split_size(builder: tfds.core.DatasetBuilder, split: str) -> int:
    """Number of examples of a split (TFDS split syntax such as "train[:10%]" allowed)."""
    return builder.info.splits[split].num_examples


def read_split(
    builder: tfds.core.DatasetBuilder,
    split: str,
    shuffle_files: bool = False,
    seed=None,
    info: SourceInfo | None = None,
) -> tf.data.Dataset:
    """Raw examples `{"frames": [T_in] string | [T_in, H, W, 3] uint8, "label": int64}`.

    JPEG videos and JPEG images are read with `SkipDecoding` (images become [1] strings); images
    in another format are decoded by TFDS and expanded to [1, H, W, 3]. `seed` (an int or an
    int64 scalar tensor) orders the files when `shuffle_files`; `info`: the builder's
    `SourceInfo` when already read.
    """
    info = info or source_info(builder)
    decoders = {info.frames_key: tfds.decode.SkipDecoding()} if info.is_jpeg else None
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    dataset = builder.as_dataset(
        split=split, shuffle_files=shuffle_files, decoders=decoders, read_config=read_config
    )

    def to_raw(example):
        frames = example[info.frames_key]
        if info.is_image:
            frames = frames[None]
        return {"frames": frames, "label": example["label"]}

    return dataset.map(to_raw, num_parallel_calls=tf.data.AUTOTUNE)


@dataclasses.dataclass(frozen=True)
class CachedSplit:
    """A split's raw examples held in memory (`cached_split`).

    Attributes:
      examples: the Dataset of raw examples, in stored order, read from memory.
      size: number of examples.
      frame_shape: (T_in, H, W, 3) when every example's frames are decoded pixels of that one
        shape (then whole batches can be transformed at once), else None.
    """

    examples: tf.data.Dataset
    size: int
    frame_shape: tuple | None


def cached_split(
    builder: tfds.core.DatasetBuilder, split: str, decoded: bool, info: SourceInfo | None = None
) -> CachedSplit:
    """A split's raw examples in stored order, read here once into memory.

    With `decoded`, JPEG frames are decoded once to uint8 [T_in, H, W, 3] before caching (the
    pipelines take either form). The in-memory cache belongs to the returned dataset object and
    is filled by a full pass here (which also counts the examples and their frame shapes), so
    every later iterator over it (e.g. each epoch's stream of `mixing.train_dataset`, which may
    stop part-way through the split: a cache that one iterator leaves incomplete is discarded)
    reads from memory. Build it once and reuse it.
    """
    info = info or source_info(builder)
    examples = read_split(builder, split, info=info)
    decoded = decoded and info.is_jpeg
    if decoded:
        examples = examples.map(
            lambda example: {**example, "frames": video_ops.decode_frames(example["frames"])},
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    examples = examples.cache()
    start = time.perf_counter()
    pixels = examples.element_spec["frames"].dtype == tf.uint8
    first = tf.fill([4], np.int32(-1))

    def count_shapes(state, example):
        count, low, high = state
        shape = tf.shape(example["frames"]) if pixels else first
        return count + 1, tf.minimum(low, shape), tf.maximum(high, shape)

    count, low, high = examples.reduce(
        (np.int64(0), tf.fill([4], np.int32(2**31 - 1)), first), count_shapes
    )
    count, low, high = int(count), low.numpy(), high.numpy()
    frame_shape = tuple(int(n) for n in low) if pixels and (low == high).all() else None
    logging.info(
        "%s[%s]: %d examples kept in memory (%s, %s), read in %.1f s",
        builder.name,
        split,
        count,
        "decoded" if decoded else "as stored",
        f"frames {frame_shape}" if frame_shape else "frames of several shapes",
        time.perf_counter() - start,
    )
    return CachedSplit(examples, count, frame_shape)
