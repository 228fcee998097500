"""Per-dataset preprocessing: one training transform, one evaluation transform.

`eval_preprocess` is THE evaluation transform: evaluation and the export signatures both call it,
so they cannot drift. It takes JPEG strings [T_in] or decoded uint8 frames [T_in, H, W, 3] of any
length and size.

Label format (training): float32 [num_classes], the one-hot label with label smoothing applied
(`(1 - eps) * one_hot + eps / num_classes`), later mixed by mixup / cutmix; the loss is a plain
`CategoricalCrossentropy(from_logits=True)` per head. Evaluation keeps int labels.
"""

import tensorflow as tf
from official.vision.ops import augment

from cover_tf.data import video_ops
from cover_tf.data.dataset_config import DatasetConfig


def clip_length(cfg: DatasetConfig) -> int:
    """Frames per clip: 1 for image datasets, cfg.num_frames for videos."""
    return 1 if cfg.is_image else cfg.num_frames


def train_frame_indices(num_available, cfg: DatasetConfig, seed, batch=()) -> tf.Tensor:
    """int32 [*batch, T] indices of training clips, by cfg.sampling (images: [0])."""
    if cfg.is_image:
        return tf.zeros([*batch, 1], tf.int32)
    if cfg.sampling == "strided":
        return video_ops.sample_strided_indices(
            num_available, cfg.num_frames, cfg.frame_stride, seed, cfg.boundary, batch
        )
    elif cfg.sampling == "segment":
        return video_ops.sample_segment_indices(num_available, cfg.num_frames, True, seed, batch)
    else:
        raise ValueError(f"sampling must be one of ('strided', 'segment'), got {cfg.sampling!r}")


def eval_frame_indices(num_available, cfg: DatasetConfig) -> tf.Tensor:
    """int32 [K, T] indices of the deterministic eval clips (images: [[0]])."""
    if cfg.is_image:
        return tf.zeros([1, 1], tf.int32)
    return video_ops.sample_eval_clip_indices(
        num_available, cfg.num_frames, cfg.frame_stride, cfg.eval_clips, cfg.sampling, cfg.boundary
    )


def smooth_one_hot(label, num_classes: int, label_smoothing: float) -> tf.Tensor:
    """int label -> float32 [num_classes]: (1 - eps) * one_hot + eps / num_classes."""
    one_hot = tf.one_hot(tf.cast(label, tf.int32), num_classes, dtype=tf.float32)
    return one_hot * (1.0 - label_smoothing) + label_smoothing / num_classes


def _rand_augment(frames: tf.Tensor, cfg: DatasetConfig) -> tf.Tensor:
    """TF Models' RandAugment on [T, H, W, 3] in [0, 255]: the same ops for every frame.

    TF Models draws its op choices with stateful `tf.random` ops: reproducible only under
    `tf.random.set_seed` and a deterministic pipeline.
    """
    rand_augment = augment.RandAugment(
        num_layers=cfg.randaugment.num_layers,
        magnitude=cfg.randaugment.magnitude,
        magnitude_std=cfg.randaugment.magnitude_std,
    )
    return tf.cast(rand_augment.distort(tf.cast(frames, tf.uint8)), tf.float32)


def train_preprocess(example, cfg: DatasetConfig, mean, std, seed) -> tuple[tf.Tensor, tf.Tensor]:
    """One training clip from a raw example: `train_preprocess_batch` on a batch of one.

    Sample T frame indices, gather them, pick one scale-jitter crop window for the clip
    (short side uniform in cfg.train_short_side_range, random position), decode only that window
    of each sampled JPEG, resize to crop_size, random flip (cfg.flip), RandAugment
    (cfg.randaugment), normalize.

    Args:
      example: {"frames": string [T_in] JPEGs | uint8 [T_in, H, W, 3], "label": int}.
      cfg: resolved dataset config (num_classes and is_image set).
      mean, std: per-channel normalization in [0, 1] scale (from the model config).
      seed: int tensor [2], the example's stateless seed.
    Returns:
      frames float32 [T, crop, crop, 3] normalized, label float32 [num_classes] (smoothed).
    """
    batch = {key: tf.convert_to_tensor(example[key])[None] for key in ("frames", "label")}
    frames, labels = train_preprocess_batch(batch, cfg, mean, std, seed)
    return frames[0], labels[0]


def batches_in_one_pass(cfg: DatasetConfig) -> bool:
    """Whether `train_preprocess_batch` takes the dataset's clips a batch at a time: not with
    RandAugment (drawn per clip) nor mixup / cutmix (which pair clips within `mix_batch_size`
    groups)."""
    return cfg.randaugment is None and cfg.mixup_alpha == 0 and cfg.cutmix_alpha == 0


def train_preprocess_batch(
    examples, cfg: DatasetConfig, mean, std, seed
) -> tuple[tf.Tensor, tf.Tensor]:
    """THE training transform, for a batch of clips of one shape in one pass of batch ops.

    Frame sampling, scale-jitter window, resize, flip, normalization and label smoothing, with
    every clip's random choices drawn from one seed: each op runs once per batch instead of once
    per clip. JPEG frames (only the window is decoded) and RandAugment (drawn per clip) take a
    batch of one, which is what `train_preprocess` passes; with a batch of one the draws are the
    per-clip transform's (a stateless draw of shape [1, n] is the one of shape [n]).

    Args:
      examples: {"frames": uint8 [B, T_in, H, W, 3] | string [1, T_in] JPEGs, "label": int [B]}.
      cfg: resolved dataset config.
      mean, std: per-channel normalization in [0, 1] scale.
      seed: int tensor [2], the batch's stateless seed.
    Returns:
      frames float32 [B, T, crop, crop, 3] normalized, labels float32 [B, num_classes].
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
    frames = examples["frames"]
    shape = tf.shape(frames)
    one_clip = frames.shape[0] == 1
    if (frames.dtype == tf.string or cfg.randaugment is not None) and not one_clip:
        raise ValueError(f"{cfg.name}: JPEG frames and RandAugment take a batch of one clip")
    batch = [frames.shape[0] or shape[0]]
    indices = train_frame_indices(shape[1], cfg, seeds[0], batch)
    frames = tf.gather(frames, indices, batch_dims=1)
    if frames.dtype == tf.string:
        height, width = video_ops.jpeg_size(frames[0, 0])
    else:
        height, width = shape[2], shape[3]
    windows = video_ops.random_scale_crop_window(
        height, width, cfg.crop_size, cfg.train_short_side_range, seeds[1], batch
    )
    if frames.dtype == tf.string:  # decode only the window: the decoded frames are the window
        frames = video_ops.decode_and_crop_frames(frames[0], windows[0])[None]
        windows = tf.concat([tf.zeros([1, 2], tf.int32), windows[:, 2:]], axis=1)
    flips = video_ops.random_flips(seeds[2], batch) if cfg.flip else None
    frames = video_ops.resize_windows(frames, windows, cfg.crop_size, flips)
    if cfg.randaugment is not None:
        frames = _rand_augment(frames[0], cfg)[None]
    frames = video_ops.normalize(frames, mean, std)
    frames.set_shape([frames.shape[0], clip_length(cfg), cfg.crop_size, cfg.crop_size, 3])
    labels = smooth_one_hot(examples["label"], cfg.num_classes, cfg.label_smoothing)
    return frames, labels


def eval_preprocess(frames: tf.Tensor, cfg: DatasetConfig, mean, std) -> tf.Tensor:
    """The evaluation (and export) transform: every view of one video or image.

    Sample cfg.eval_clips deterministic clips, decode their frames (JPEG input), resize the short
    side to cfg.eval_short_side, take cfg.eval_crops crops (1: centre; 3: start / centre / end of the
    long side), normalize. Views are ordered clip-major: view = clip * crops + crop.

    Args:
      frames: string [T_in] JPEGs or uint8 [T_in, H, W, 3] of any T_in >= 1 and size; a single
        image may also be given as uint8 [H, W, 3] or a string scalar.
      cfg: resolved dataset config (is_image set).
      mean, std: per-channel normalization in [0, 1] scale.
    Returns:
      float32 [V, T, crop, crop, 3], V = eval_clips * eval_crops (images: T = 1, V = eval_crops).
    """
    frames = tf.convert_to_tensor(frames)
    if (frames.dtype == tf.string and frames.shape.rank == 0) or frames.shape.rank == 3:
        frames = frames[None]
    indices = eval_frame_indices(tf.shape(frames)[0], cfg)  # [K, T]
    num_clips, num_frames = indices.shape
    frames = video_ops.gather_frames(frames, tf.reshape(indices, [-1]))
    if frames.dtype == tf.string:
        frames = video_ops.decode_frames(frames)
    frames = video_ops.resize_short_side(frames, cfg.eval_short_side)
    clips = []
    for clip in range(num_clips):
        clip_frames = frames[clip * num_frames : (clip + 1) * num_frames]
        if cfg.eval_crops == 1:
            clips.append(video_ops.center_crop(clip_frames, cfg.crop_size)[None])
        elif cfg.eval_crops == 3:
            clips.append(video_ops.three_crops(clip_frames, cfg.crop_size))
        else:
            raise ValueError(f"eval_crops must be one of (1, 3), got {cfg.eval_crops}")
    views = video_ops.normalize(tf.concat(clips, axis=0), mean, std)
    views.set_shape([num_clips * cfg.eval_crops, num_frames, cfg.crop_size, cfg.crop_size, 3])
    return views
