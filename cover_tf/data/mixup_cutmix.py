"""Mixup and CutMix on a batch of clips of ONE dataset, with stateless randomness.

The input pipeline applies this to same-dataset mini-batches (`DatasetConfig.mix_batch_size`)
before the datasets are mixed, so that a pair always comes from one dataset and one head.
Sample i is paired with sample B - 1 - i (the reversed batch), as timm and TF Models do.
"""

import tensorflow as tf


def sample_beta(seed, alpha: float, shape) -> tf.Tensor:
    """float32 draws from Beta(alpha, alpha) (stateless, via two gamma draws)."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    a = tf.random.stateless_gamma(shape, seeds[0], alpha=alpha)
    b = tf.random.stateless_gamma(shape, seeds[1], alpha=alpha)
    return a / (a + b)


def mixup(frames: tf.Tensor, labels: tf.Tensor, alpha: float, seed) -> tuple:
    """Mixup: x = lam x + (1 - lam) x_rev, y likewise; lam ~ Beta(alpha, alpha) per sample.

    Args:
      frames: float32 [B, T, H, W, C].
      labels: float32 [B, K].
    Returns:
      (frames [B, T, H, W, C], labels [B, K]).
    """
    lam = sample_beta(seed, alpha, tf.shape(frames)[:1])
    lam_frames = tf.reshape(lam, [-1, 1, 1, 1, 1])
    lam_labels = lam[:, None]
    frames = lam_frames * frames + (1.0 - lam_frames) * tf.reverse(frames, [0])
    labels = lam_labels * labels + (1.0 - lam_labels) * tf.reverse(labels, [0])
    return frames, labels


def cutmix(frames: tf.Tensor, labels: tf.Tensor, alpha: float, seed) -> tuple:
    """CutMix: paste a box of the paired clip into every frame; labels mixed by the kept area.

    The box has area fraction 1 - lam (lam ~ Beta(alpha, alpha)), a uniform random centre and is
    clipped to the frame; the label weight is the actual kept area.

    Args:
      frames: float32 [B, T, H, W, C].
      labels: float32 [B, K].
    Returns:
      (frames [B, T, H, W, C], labels [B, K]).
    """
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    shape = tf.shape(frames)
    batch, height, width = shape[0], shape[2], shape[3]
    lam = sample_beta(seeds[0], alpha, [batch])
    ratio = tf.sqrt(1.0 - lam)
    height_f, width_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    centre_y = tf.random.stateless_uniform([batch], seeds[1]) * height_f
    centre_x = tf.random.stateless_uniform([batch], seeds[2]) * width_f
    y0 = tf.clip_by_value(tf.round(centre_y - ratio * height_f / 2), 0.0, height_f)
    y1 = tf.clip_by_value(tf.round(centre_y + ratio * height_f / 2), 0.0, height_f)
    x0 = tf.clip_by_value(tf.round(centre_x - ratio * width_f / 2), 0.0, width_f)
    x1 = tf.clip_by_value(tf.round(centre_x + ratio * width_f / 2), 0.0, width_f)
    rows = tf.range(height_f)[None, :]
    cols = tf.range(width_f)[None, :]
    in_rows = tf.cast((rows >= y0[:, None]) & (rows < y1[:, None]), tf.float32)  # [B, H]
    in_cols = tf.cast((cols >= x0[:, None]) & (cols < x1[:, None]), tf.float32)  # [B, W]
    box = in_rows[:, :, None] * in_cols[:, None, :]  # [B, H, W]
    kept = 1.0 - tf.reduce_mean(box, axis=[1, 2])  # [B]
    box = box[:, None, :, :, None]
    frames = (1.0 - box) * frames + box * tf.reverse(frames, [0])
    labels = kept[:, None] * labels + (1.0 - kept[:, None]) * tf.reverse(labels, [0])
    return frames, labels


def mixup_or_cutmix(
    frames: tf.Tensor, labels: tf.Tensor, mixup_alpha: float, cutmix_alpha: float, seed
) -> tuple:
    """Per batch, mixup or cutmix (each with probability 1/2 when both are on; 0 alpha = off).

    Args:
      frames: float32 [B, T, H, W, C] of one dataset.
      labels: float32 [B, K] (one-hot, possibly smoothed).
      seed: int tensor [2].
    Returns:
      (frames [B, T, H, W, C], labels [B, K]); unchanged when both alphas are 0.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_cutmix = tf.random.stateless_uniform([], seeds[0]) < 0.5
        return tf.cond(
            use_cutmix,
            lambda: cutmix(frames, labels, cutmix_alpha, seeds[1]),
            lambda: mixup(frames, labels, mixup_alpha, seeds[2]),
        )
    if mixup_alpha > 0:
        return mixup(frames, labels, mixup_alpha, seeds[2])
    if cutmix_alpha > 0:
        return cutmix(frames, labels, cutmix_alpha, seeds[1])
    return frames, labels
