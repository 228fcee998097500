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


def uniform_int(uniform: tf.Tensor, count) -> tf.Tensor:
    """Floats uniform in [0, 1) -> int32 uniform in [0, count) (`count` >= 1, broadcast)."""
    count = tf.cast(count, tf.int32)
    return tf.minimum(tf.cast(uniform * tf.cast(count, tf.float32), tf.int32), count - 1)


def sample_strided_indices(
    num_available, num_frames: int, frame_stride: int, seed, boundary: str = "clamp", batch=()
) -> tf.Tensor:
    """Random strided clip (Kinetics / MiT training): `num_frames` indices `frame_stride` apart.

    The start is uniform over every position where the whole clip fits; a video shorter than the
    clip starts at 0 and its indices past the end are clamped (or wrapped, `boundary="wrap"`).

    Args:
      num_available: int scalar tensor, number of frames T_in of the video (of every video of
        the batch).
      num_frames: frames per clip T.
      frame_stride: distance between sampled frames.
      seed: int tensor [2] for `tf.random.stateless_uniform`.
      boundary: "clamp" or "wrap".
      batch: leading shape: one clip per entry, each with its own start.
    Returns:
      int32 [*batch, T] frame indices in [0, T_in).
    """
    num_available = tf.cast(num_available, tf.int32)
    span = (num_frames - 1) * frame_stride + 1
    num_starts = tf.maximum(num_available - span + 1, 1)
    start = uniform_int(tf.random.stateless_uniform(batch, seed), num_starts)
    indices = start[..., None] + tf.range(num_frames, dtype=tf.int32) * frame_stride
    return _fold_index(indices, num_available, boundary)


def sample_segment_indices(
    num_available, num_frames: int, training: bool, seed=None, batch=()
) -> tf.Tensor:
    """Segment sampling (SSv2, TSN): split the video into T equal segments, one frame from each.

    Training takes a uniformly random frame per segment, evaluation the centre frame.

    Args:
      num_available: int scalar tensor, number of frames T_in.
      num_frames: number of segments T.
      training: random (True) or centre (False) frame per segment.
      seed: int tensor [2]; required when `training`.
      batch: leading shape: one clip per entry, each with its own random frames.
    Returns:
      int32 [*batch, T] non-decreasing indices in [0, T_in); index t lies in segment t when
      T_in >= T.
    """
    num_available = tf.cast(num_available, tf.int32)
    length = tf.cast(num_available, tf.float32)
    starts = tf.range(num_frames, dtype=tf.float32) * length / num_frames
    segment_length = length / num_frames
    if training:
        fraction = tf.random.stateless_uniform([*batch, num_frames], seed)
    else:
        fraction = tf.fill([*batch, num_frames], 0.5)
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


def random_scale_crop_window(
    height, width, crop_size: int, short_side_range, seed, batch=()
) -> tf.Tensor:
    """Window [y, x, h, w] in source pixels equal to "resize short side to s, random crop_size crop".

    s is uniform in `short_side_range` = (min, max) inclusive (scale jitter). The window side is
    crop_size * min(H, W) / s, so resizing the window to crop_size x crop_size equals resizing the
    frame to short side s and then taking a random crop, with one crop for all frames.

    Args:
      height, width: int32 scalars, source frame size H, W (of every clip of the batch).
      crop_size: output crop side.
      short_side_range: (min, max) short side after the scale jitter.
      seed: int tensor [2].
      batch: leading shape: one window per entry, each drawn on its own.
    Returns:
      int32 [*batch, 4] windows (y, x, h, w) inside [0, H) x [0, W).
    """
    uniform = tf.random.stateless_uniform([*batch, 3], seed)
    low, high = short_side_range
    short_side = low + uniform_int(uniform[..., 0], high - low + 1)
    source_short = tf.minimum(height, width)
    side = tf.cast(
        tf.round(crop_size * tf.cast(source_short, tf.float32) / tf.cast(short_side, tf.float32)),
        tf.int32,
    )
    side = tf.clip_by_value(side, 1, source_short)
    y = uniform_int(uniform[..., 1], height - side + 1)
    x = uniform_int(uniform[..., 2], width - side + 1)
    return tf.stack([y, x, side, side], axis=-1)


def random_flips(seed, batch=()) -> tf.Tensor:
    """bool [*batch]: each True with probability 1/2 (a horizontal flip of that clip)."""
    return tf.random.stateless_uniform(batch, seed) < 0.5


def resize_windows(frames: tf.Tensor, windows: tf.Tensor, size: int, flips=None) -> tf.Tensor:
    """Each clip's window [y, x, h, w], resized to size x size (bilinear), flipped where asked.

    One `tf.image.crop_and_resize` over all frames of all clips (a clip's frames share its
    window). A window at least `size` on a side is sampled at the half-pixel centres
    `tf.image.resize` samples it at (crop-then-resize to float rounding); a smaller one (an
    upscale) maps its corner pixels to the output's corners, as crop_and_resize cannot repeat
    a window's edge pixels the way resize does.

    Args:
      frames: [B, T, H, W, C] clips (any real dtype).
      windows: int32 [B, 4] (y, x, h, w) inside [0, H) x [0, W).
      size: output side.
      flips: bool [B] (None: no flip): mirror that clip left to right.
    Returns:
      float32 [B, T, size, size, C].
    """
    shape = tf.shape(frames)
    # Static sizes where known: grappler's cost model cannot cost a CropAndResize whose box
    # count is unknown and logs a warning for each dataset that maps this.
    batch, length = (static or shape[i] for i, static in enumerate(frames.shape[:2]))
    windows = tf.cast(windows, tf.float32)
    starts, sides = windows[:, :2], windows[:, 2:]
    # First and last sample, in source pixels: half-pixel centres, or the window's corners.
    first = tf.where(sides >= size, starts + 0.5 * sides / size - 0.5, starts)
    last = tf.where(sides >= size, starts + (size - 0.5) * sides / size - 0.5, starts + sides - 1)
    scale = tf.maximum(tf.cast(shape[2:4], tf.float32) - 1.0, 1.0)
    first, last = first / scale, last / scale
    x1, x2 = first[:, 1], last[:, 1]
    if flips is not None:
        x1, x2 = tf.where(flips, x2, x1), tf.where(flips, x1, x2)
    boxes = tf.repeat(tf.stack([first[:, 0], x1, last[:, 0], x2], axis=1), length, axis=0)
    flat = tf.reshape(frames, tf.concat([[batch * length], shape[2:]], 0))
    resized = tf.image.crop_and_resize(flat, boxes, tf.range(batch * length), [size, size])
    resized = tf.reshape(resized, tf.concat([[batch, length, size, size], shape[4:]], 0))
    resized.set_shape(frames.shape[:2].concatenate([size, size, frames.shape[-1]]))
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
