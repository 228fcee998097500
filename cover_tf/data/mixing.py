"""Mixing the datasets' training streams into one stream of Keras-ready batches.

Weights. Dataset d gets w_d proportional to (train split size)^alpha (alpha = 1: the paper's
size-proportional sampling), or its explicit `DatasetConfig.weight`; the w_d are normalised over
all datasets and logged. w_d is the expected share of SAMPLES (clips / images) that dataset d
contributes to training.

Two levels. Datasets whose clips have one shape (video datasets at one T x crop; image datasets
at one crop) form a shape group g and mix sample by sample with `sample_from_datasets`, within-group
probabilities w_d / W_g (W_g = sum of the group's w_d); each group is batched with its own batch
size B_g (drop_remainder, static shapes). Groups then alternate batch by batch with
`sample_from_datasets`, step probabilities

    p_g = (W_g / B_g) / sum_h (W_h / B_h),

so that the expected number of samples of group g per step, p_g * B_g, is proportional to W_g,
and dataset d's expected share of samples is (W_g share) x (w_d / W_g) = w_d.

Element: `(frames float32 [B, T, H, W, 3], {name: label float32 [B, num_classes]},
{name: sample_weight float32 [B]})`: a sample has weight 1 on its own dataset's head and 0 on the
others, whose labels are all-zero rows (valid for the loss, and masked). The element_spec is
`[None, None, H, W, 3]` across groups (B and T differ between groups).
"""

import collections

import tensorflow as tf
from absl import logging

from cover_tf.data import input_pipeline, reader
from cover_tf.data.dataset_config import DatasetConfig, MixingConfig

# Epoch e's streams are seeded seed + EPOCH_SEED_STRIDE * (e + 1) (+ 1000 x dataset index,
# + 7919 x group index within the epoch): a stride no dataset or group offset reaches.
EPOCH_SEED_STRIDE = 1_000_003
MAX_EPOCHS = 1 << 40


def dataset_weights(sizes: dict, alpha: float, overrides: dict | None = None) -> dict:
    """Normalised mixing weights {name: w}, w proportional to size**alpha or the explicit override.

    Overrides (non-None values of `overrides`) are used as given before normalising, so they are
    relative to the size**alpha weights of the other datasets. The result is logged on one line.

    Args:
      sizes: {name: number of training examples}.
      alpha: exponent of the size (1 = proportional, 0 = uniform).
      overrides: {name: weight or None}.
    """
    overrides = overrides or {}
    raw = {}
    for name, size in sizes.items():
        override = overrides.get(name)
        raw[name] = float(override) if override is not None else float(size) ** alpha
    total = sum(raw.values())
    if total <= 0:
        raise ValueError(f"mixing weights must not all be zero, got {raw}")
    weights = {name: value / total for name, value in raw.items()}
    logging.info(
        "Dataset mixing weights: %s", ", ".join(f"{n}: {w:.4f}" for n, w in weights.items())
    )
    return weights


def shape_group(cfg: DatasetConfig) -> tuple:
    """The shape group key of a resolved config: ("video", T, crop) or ("image", crop)."""
    if cfg.is_image:
        return ("image", cfg.crop_size)
    return ("video", cfg.num_frames, cfg.crop_size)


def group_step_weights(weights: dict, groups: dict, batch_sizes: dict) -> dict:
    """Step probabilities of the shape groups, p_g proportional to W_g / B_g (module docstring).

    Args:
      weights: {dataset name: normalised weight}.
      groups: {group key: [dataset names]}.
      batch_sizes: {group key: batch size}.
    """
    raw = {key: sum(weights[n] for n in names) / batch_sizes[key] for key, names in groups.items()}
    total = sum(raw.values())
    return {key: value / total for key, value in raw.items()}


def route_to_heads(element: dict, names: list, num_classes: dict) -> tuple:
    """{frames, label, dataset_index} -> (frames, {name: label}, {name: sample_weight}).

    The sample's own head (names[dataset_index]) gets its label and weight 1.0; every other head an
    all-zero label row and weight 0.0. Works on one element or a batch.
    """
    index = element["dataset_index"]
    batch_shape = tf.shape(index)
    labels, weights = {}, {}
    for i, name in enumerate(names):
        own = tf.equal(index, i)
        if element["label"].shape[-1] == num_classes[name]:
            label = tf.where(own[..., None], element["label"], 0.0)
        else:
            label = tf.zeros(tf.concat([batch_shape, [num_classes[name]]], 0), tf.float32)
        labels[name] = label
        weights[name] = tf.cast(own, tf.float32)
    return element["frames"], labels, weights


def _routed(stream: tf.data.Dataset, index: int, names: list, num_classes: dict):
    """A dataset's stream (of clips or batches) with its head index set and routed to
    (frames, labels, weights)."""
    return stream.map(
        lambda e: route_to_heads(
            {**e, "dataset_index": tf.fill(tf.shape(e["dataset_index"]), index)},
            names,
            num_classes,
        )
    )


def mix_streams(
    streams: dict,
    weights: dict,
    groups: dict,
    batch_sizes: dict,
    num_classes: dict,
    seed: int,
) -> tf.data.Dataset:
    """Two-level mixing of per-dataset streams into routed batches.

    Args:
      streams: {name: infinite Dataset of {frames, label, dataset_index}}, in head order: of
        batches of the group's batch size for a dataset alone in its shape group
        (`input_pipeline.train_stream(batch_size=...)`), of single clips for the others.
      weights: {name: normalised weight}.
      groups: {group key: [names]} (every name in exactly one group).
      batch_sizes: {group key: batch size}.
      num_classes: {name: classes of that head}.
      seed: seed of the sampling choices.
    Returns:
      infinite Dataset of (frames [B, T, H, W, 3], {name: [B, K_name]}, {name: [B]}).
    """
    names = list(streams)
    step_weights = group_step_weights(weights, groups, batch_sizes)
    batched_groups, group_probabilities = [], []
    for group_index, (key, members) in enumerate(groups.items()):
        routed = [_routed(streams[name], names.index(name), names, num_classes) for name in members]
        within = [weights[name] for name in members]
        if len(routed) == 1:
            batched_groups.append(routed[0])
        else:
            group = tf.data.Dataset.sample_from_datasets(
                routed, weights=within, seed=seed + 7919 * group_index
            )
            batched_groups.append(group.batch(batch_sizes[key], drop_remainder=True))
        group_probabilities.append(step_weights[key])
    logging.info(
        "Shape group step probabilities: %s",
        ", ".join(f"{key}: {p:.4f}" for key, p in step_weights.items()),
    )
    if len(batched_groups) == 1:
        return batched_groups[0]
    return tf.data.Dataset.sample_from_datasets(
        batched_groups, weights=group_probabilities, seed=seed
    )


def epoch_seed(seed, epoch):
    """The seed of epoch `epoch`'s stream (int64 tensor): its own per epoch, the same every run."""
    return tf.cast(seed, tf.int64) + EPOCH_SEED_STRIDE * (tf.cast(epoch, tf.int64) + 1)


def train_dataset(
    configs: list,
    mixing: MixingConfig,
    mean,
    std,
    builders: dict | None = None,
    steps_per_epoch: int | None = None,
    first_epoch: int = 0,
) -> tf.data.Dataset:
    """The mixed, repeated, prefetched training dataset for Keras `fit`.

    With `steps_per_epoch`, epoch e's batches come from streams seeded by `epoch_seed(seed, e)`
    (every dataset's file order, shuffle and transforms start afresh from that seed), so the
    dataset from `first_epoch` on is built directly: resuming at a late epoch costs what
    starting does, and gives the batches an uninterrupted run gives from that epoch. Without
    it, one stream seeded by `mixing.seed` runs on for ever.

    Args:
      configs: [DatasetConfig], in head order (their names are the heads); resolved configs
        (`prepare_datasets`) are used as they are, others are resolved against their builders.
      mixing: weights exponent, group batch sizes, shuffle buffers, seed, determinism.
      mean, std: per-channel normalization in [0, 1] scale (from the model config).
      builders: {name: builder instance or name} overriding the configs' builders.
      steps_per_epoch: batches per epoch of the per-epoch streams (None: one stream).
      first_epoch: the epoch the dataset starts at (a resumed run's completed epochs).
    Returns:
      infinite Dataset of (frames [B, T, H, W, 3], {name: [B, K_name]}, {name: [B]}).
    """
    mixing.validate()
    names = [cfg.name for cfg in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"dataset names must be unique, got {names}")
    builders = builders or {}
    resolved, sizes = [], {}
    for cfg in configs:
        cfg.validate()
        builder, cfg = reader.resolve(cfg, builders.get(cfg.name))
        resolved.append((builder, cfg))
        sizes[cfg.name] = reader.split_size(builder, cfg.train_split)
    weights = dataset_weights(sizes, mixing.alpha, {cfg.name: cfg.weight for cfg in configs})
    groups = collections.OrderedDict()
    for _, cfg in resolved:
        groups.setdefault(shape_group(cfg), []).append(cfg.name)
    batch_sizes = {
        key: mixing.image_batch_size if key[0] == "image" else mixing.video_batch_size
        for key in groups
    }
    num_classes = {cfg.name: cfg.num_classes for _, cfg in resolved}
    # Built once, outside the per-epoch streams, so that every epoch reads them from memory.
    cached = {
        cfg.name: reader.cached_split(
            builder, cfg.train_split, decoded=cfg.cache == "decoded", info=cfg.source
        )
        for builder, cfg in resolved
        if cfg.cache != "none"
    }

    alone = {names[0]: key for key, names in groups.items() if len(names) == 1}

    def mixed(seed):
        streams = {}
        for index, (builder, cfg) in enumerate(resolved):
            group = alone.get(cfg.name)
            streams[cfg.name] = input_pipeline.train_stream(
                cfg,
                mean,
                std,
                seed=seed + 1000 * index,
                dataset_index=index,
                shuffle_buffer=mixing.image_shuffle_buffer
                if cfg.is_image
                else mixing.video_shuffle_buffer,
                num_parallel_calls=mixing.num_parallel_calls,
                builder=builder,
                cached=cached.get(cfg.name),
                batch_size=None if group is None else batch_sizes[group],
            )
        return mix_streams(streams, weights, groups, batch_sizes, num_classes, seed)

    if steps_per_epoch is None:
        dataset = mixed(mixing.seed)
    else:

        @tf.autograph.experimental.do_not_convert  # plain Python: TFDS's reader is traced inside
        def epoch_stream(epoch):
            # TF's seed helper compares (graph seed, op seed) with (0, 0) in Python, which fails
            # for a tensor op seed under graph seed 0 (`keras.utils.set_random_seed(0)`). Every
            # op here has its own seed, so this trace's graph seed is left unset.
            tf.compat.v1.get_default_graph().seed = None
            return mixed(epoch_seed(mixing.seed, epoch)).take(steps_per_epoch)

        dataset = tf.data.Dataset.range(first_epoch, MAX_EPOCHS).flat_map(epoch_stream)
    options = tf.data.Options()
    options.deterministic = mixing.deterministic
    # Multi-worker: every worker builds the same stream and takes its replicas' slices of each
    # global batch (DATA). AUTO would look for file readers inside the per-epoch flat_map.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
