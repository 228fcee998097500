"""Pure video ops over clips [T, H, W, C]: frame sampling, decoding, resizing, crops, flip, normalize.

Every function is a small pure TF function that works eagerly and inside `tf.data.Dataset.map`.
Random ops are stateless: they take an explicit `seed` (int tensor of shape [2]), so a pipeline is
deterministic given its seed. Frame indices are sampled before any JPEG is decoded; `decode_frames`
and `decode_and_crop_frames` then decode only the gathered frames.
"""

import numpy as np
import tensorflow as tf
from official.vision.ops import preprocess_ops_3d

BOUNDARIES = ("clamp", "wrap")


def _fold_index(indices: tf.Tensor, num_available: tf.Tensor, boundary: str) -> tf.Tensor:
    """Maps indices past the end of a video back inside it ("clamp": repeat the last frame)."""
    if boundary == "clamp":
        return tf.minimum(indices, num_available - 1)
    elif boundary == "wrap":
        return tf.math.floormod(indices, num_available)
    else:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")


def sample_strided_indices(
    num_available, num_frames: int, frame_stride: int, seed, boundary: str = "clamp"
) -> tf.Tensor:
    """Random strided clip (Kinetics / MiT training): `num_frames` indices `frame_stride` apart.

    The start is uniform over every position where the whole clip fits; a video shorter than the
    clip starts at 0 and its indices past the end are clamped (or wrapped, `boundary="wrap"`).

    Args:
      num_available: int scalar tensor, number of frames T_in of the video.
      num_frames: frames per clip T.
      frame_stride: distance between sampled frames.
      seed: int tensor [2] for `tf.random.stateless_uniform`.
      boundary: "clamp" or "wrap".
    Returns:
      int32 [T] frame indices in [0, T_in).
    """
    num_available = tf.cast(num_available, tf.int32)
    span = (num_frames - 1) * frame_stride + 1
    num_starts = tf.maximum(num_available - span + 1, 1)
    start = tf.random.stateless_uniform([], seed, minval=0, maxval=num_starts, dtype=tf.int32)
    indices = start + tf.range(num_frames, dtype=tf.int32) * frame_stride
    return _fold_index(indices, num_available, boundary)


def sample_segment_indices(num_available, num_frames: int, training: bool, seed=None) -> tf.Tensor:
    """Segment sampling (SSv2, TSN): split the video into T equal segments, one frame from each.

    Training takes a uniformly random frame per segment, evaluation the centre frame.

    Args:
      num_available: int scalar tensor, number of frames T_in.
      num_frames: number of segments T.
      training: random (True) or centre (False) frame per segment.
      seed: int tensor [2]; required when `training`.
    Returns:
      int32 [T] non-decreasing indices in [0, T_in); index t lies in segment t when T_in >= T.
    """
    num_available = tf.cast(num_available, tf.int32)
    length = tf.cast(num_available, tf.float32)
    starts = tf.range(num_frames, dtype=tf.float32) * length / num_frames
    segment_length = length / num_frames
    if training:
        fraction = tf.random.stateless_uniform([num_frames], seed, minval=0.0, maxval=1.0)
    else:
        fraction = tf.fill([num_frames], 0.5)
    indices = tf.cast(tf.floor(starts + fraction * segment_length), tf.int32)
    return tf.clip_by_value(indices, 0, num_available - 1)


def sample_eval_clip_indices(
    num_available,
    num_frames: int,
    frame_stride: int,
    num_clips: int,
    sampling: str = "strided",
    boundary: str = "clamp",
) -> tf.Tensor:
    """Deterministic evaluation clips, evenly spaced over the video.

    "strided": clip k starts at the centre of the k-th of `num_clips` equal parts of the range of
    valid starts (one clip = the centre clip). "segment": clip k takes, in every segment, the frame at
    fraction (k + 0.5) / num_clips of the segment (one clip = segment centres).

    Args:
      num_available: int scalar tensor, number of frames T_in.
      num_frames: frames per clip T.
      frame_stride: distance between frames ("strided" only).
      num_clips: number of clips K.
      sampling: "strided" or "segment".
      boundary: "clamp" or "wrap" for clips longer than the video ("strided" only).
    Returns:
      int32 [K, T] frame indices.
    """
    num_available = tf.cast(num_available, tf.int32)
    fractions = (tf.range(num_clips, dtype=tf.float32) + 0.5) / num_clips  # [K]
    if sampling == "strided":
        span = (num_frames - 1) * frame_stride + 1
        max_start = tf.cast(tf.maximum(num_available - span, 0), tf.float32)
        starts = tf.cast(tf.floor(fractions * max_start + 0.5), tf.int32)  # [K]
        indices = starts[:, None] + tf.range(num_frames, dtype=tf.int32)[None, :] * frame_stride
        return _fold_index(indices, num_available, boundary)
    elif sampling == "segment":
        length = tf.cast(num_available, tf.float32)
        starts = tf.range(num_frames, dtype=tf.float32) * length / num_frames  # [T]
        indices = tf.floor(starts[None, :] + fractions[:, None] * length / num_frames)
        return tf.clip_by_value(tf.cast(indices, tf.int32), 0, num_available - 1)
    else:
        raise ValueError(f"sampling must be one of ('strided', 'segment'), got {sampling!r}")


def gather_frames(frames: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    """Takes frames [T_in, ...] (uint8 pixels or JPEG strings) at int indices [T] -> [T, ...].

    The static length T of `indices` is restored on the result.
    """
    gathered = tf.gather(frames, indices)
    gathered.set_shape(indices.shape.concatenate(frames.shape[1:]))
    return gathered


def jpeg_size(jpeg: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(height, width) int32 scalars of one JPEG string, read from its header only."""
    shape = tf.io.extract_jpeg_shape(jpeg)
    return shape[0], shape[1]


def decode_frames(jpegs: tf.Tensor, dct_method: str = "INTEGER_FAST") -> tf.Tensor:
    """Decodes JPEG strings [T] -> uint8 [T, H, W, 3] (all frames of one clip share one size)."""
    frames = tf.map_fn(
        lambda jpeg: tf.io.decode_jpeg(jpeg, channels=3, dct_method=dct_method),
        jpegs,
        fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    )
    frames.set_shape(jpegs.shape.concatenate([None, None, 3]))
    return frames


MAX_UNROLLED_DECODES = 64


def decode_and_crop_frames(
    jpegs: tf.Tensor, window: tf.Tensor, dct_method: str = "INTEGER_FAST"
) -> tf.Tensor:
    """Decodes only the window [y, x, h, w] of every JPEG [T] -> uint8 [T, h, w, 3].

    `tf.io.decode_and_crop_jpeg` skips the pixels outside the window, much cheaper than a full
    decode followed by a crop.
    """

    def decode(jpeg):
        return tf.io.decode_and_crop_jpeg(jpeg, window, channels=3, dct_method=dct_method)

    if jpegs.shape[0] is not None and jpegs.shape[0] <= MAX_UNROLLED_DECODES:
        # A known, short clip: one decode op per frame, no while loop (whose per-element
        # overhead cost more than the decoding of the demo's 40x40 frames).
        frames = tf.stack([decode(jpegs[i]) for i in range(jpegs.shape[0])])
    else:
        frames = tf.map_fn(
            decode, jpegs, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
        )
    frames.set_shape(jpegs.shape.concatenate([None, None, 3]))
    return frames


def crop_window(frames: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Crops the window [y, x, h, w] from every frame of [T, H, W, C] -> [T, h, w, C]."""
    y, x, h, w = tf.unstack(window)
    return frames[:, y : y + h, x : x + w, :]


def random_scale_crop_window(height, width, crop_size: int, short_side_range, seed) -> tf.Tensor:
    """Window [y, x, h, w] in source pixels equal to "resize short side to s, random crop_size crop".

    s is uniform in `short_side_range` = (min, max) inclusive (scale jitter). The window side is
    crop_size * min(H, W) / s, so resizing the window to crop_size x crop_size equals resizing the
    frame to short side s and then taking a random crop, with one crop for all frames.

    Args:
      height, width: int32 scalars, source frame size H, W.
      crop_size: output crop side.
      short_side_range: (min, max) short side after the scale jitter.
      seed: int tensor [2].
    Returns:
      int32 [4] window (y, x, h, w) inside [0, H) x [0, W).
    """
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    low, high = short_side_range
    short_side = tf.random.stateless_uniform(
        [], seeds[0], minval=low, maxval=high + 1, dtype=tf.int32
    )
    source_short = tf.minimum(height, width)
    side = tf.cast(
        tf.round(crop_size * tf.cast(source_short, tf.float32) / tf.cast(short_side, tf.float32)),
        tf.int32,
    )
    side = tf.clip_by_value(side, 1, source_short)
    y = tf.random.stateless_uniform(
        [], seeds[1], minval=0, maxval=height - side + 1, dtype=tf.int32
    )
    x = tf.random.stateless_uniform([], seeds[2], minval=0, maxval=width - side + 1, dtype=tf.int32)
    return tf.stack([y, x, side, side])


def resize(frames: tf.Tensor, size: int, antialias: bool = False) -> tf.Tensor:
    """Resizes [T, H, W, C] to float32 [T, size, size, C] (bilinear).

    Training crop windows are at most ~1.5x the output, where plain bilinear is the usual choice
    and 2.7x faster than the antialiased kernel on CPU; antialias=True for strong downscaling.
    """
    resized = tf.image.resize(frames, [size, size], antialias=antialias)
    resized.set_shape(frames.shape[:1].concatenate([size, size, frames.shape[-1]]))
    return resized


def resize_short_side(frames: tf.Tensor, short_side: int) -> tf.Tensor:
    """Resizes [T, H, W, C] so that min(H', W') == short_side -> float32 [T, H', W', C].

    The aspect ratio is kept (the long side rounds to the nearest pixel). Frames whose short side
    already is `short_side` are only cast (an antialiased resize to the same size is the
    identity, and cost ~a quarter of the tiny benchmark config's serving time).
    """
    shape = tf.shape(frames)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    scale = short_side / tf.minimum(height, width)
    new_height = tf.maximum(tf.cast(tf.round(height * scale), tf.int32), short_side)
    new_width = tf.maximum(tf.cast(tf.round(width * scale), tf.int32), short_side)
    return tf.cond(
        tf.logical_and(tf.equal(new_height, shape[1]), tf.equal(new_width, shape[2])),
        lambda: tf.cast(frames, tf.float32),
        lambda: tf.image.resize(frames, tf.stack([new_height, new_width]), antialias=True),
    )


def random_crop(frames: tf.Tensor, size: int, seed) -> tf.Tensor:
    """The same random size x size crop of every frame: [T, H, W, C] -> [T, size, size, C]."""
    shape = tf.shape(frames)
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    y = tf.random.stateless_uniform([], seeds[0], 0, shape[1] - size + 1, dtype=tf.int32)
    x = tf.random.stateless_uniform([], seeds[1], 0, shape[2] - size + 1, dtype=tf.int32)
    cropped = frames[:, y : y + size, x : x + size, :]
    cropped.set_shape(frames.shape[:1].concatenate([size, size, frames.shape[-1]]))
    return cropped


def center_crop(frames: tf.Tensor, size: int) -> tf.Tensor:
    """Central size x size crop of every frame: [T, H, W, C] -> [T, size, size, C]."""
    cropped = preprocess_ops_3d.crop_image(frames, size, size, random=False, num_crops=1)
    cropped.set_shape(frames.shape[:1].concatenate([size, size, frames.shape[-1]]))
    return cropped


def three_crops(frames: tf.Tensor, size: int) -> tf.Tensor:
    """TimeSformer's test crops: [T, H, W, C] -> [3, T, size, size, C].

    Three size x size crops centred on the short side, at the start, centre and end of the long
    side (left / centre / right for landscape frames, top / centre / bottom for portrait).
    """
    shape = tf.shape(frames)
    height, width = shape[1], shape[2]
    landscape = width >= height
    long_offsets = tf.stack(
        [0, (tf.maximum(height, width) - size) // 2, tf.maximum(height, width) - size]
    )
    short_offset = (tf.minimum(height, width) - size) // 2
    crops = []
    for i in range(3):
        y = tf.where(landscape, short_offset, long_offsets[i])
        x = tf.where(landscape, long_offsets[i], short_offset)
        crops.append(frames[:, y : y + size, x : x + size, :])
    stacked = tf.stack(crops)
    stacked.set_shape([3, frames.shape[0], size, size, frames.shape[-1]])
    return stacked


def random_flip_left_right(frames: tf.Tensor, seed) -> tf.Tensor:
    """Flips all frames of [T, H, W, C] horizontally together with probability 1/2."""
    flip = tf.random.stateless_uniform([], seed, minval=0, maxval=2, dtype=tf.int32)
    return tf.cond(flip > 0, lambda: tf.reverse(frames, axis=[2]), lambda: frames)


def normalize(frames: tf.Tensor, mean, std) -> tf.Tensor:
    """Pixels in [0, 255] [..., C] -> float32 (pixels / 255 - mean) / std.

    Args:
      frames: [..., C] pixels, any real dtype.
      mean, std: sequences of C floats in [0, 1] scale (from the model config).
    Returns:
      float32 [..., C]. Computed as bias_add then one multiply (a scalar one when std is the same
      for every channel): per-channel broadcasting multiplies are ~5x slower on CPU.
    """
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    frames = tf.cast(frames, tf.float32)
    if frames.shape.rank is not None and frames.shape.rank >= 2:
        frames = tf.nn.bias_add(frames, -255.0 * mean)
    else:
        frames = frames - 255.0 * mean
    if np.all(std == std[0]):
        return frames * float(1.0 / (255.0 * std[0]))
    return frames * (1.0 / (255.0 * std))
