"""The largest request an export accepts, and the in-graph checks that refuse larger ones.

Every serving signature passes its input through `checked_frames` or `checked_jpegs`: a request
outside the limits fails inside the graph with an InvalidArgument error whose message names the
limit (TF Serving answers INVALID_ARGUMENT / HTTP 400 with it).
"""

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class ServingLimits:
    """Largest request an export accepts.

    Attributes:
      max_frames: frames per video (dimension 1 of the input).
      max_pixels: height x width of one frame.
      max_batch: videos per request (dimension 0); keep TF Serving's batching max_batch_size at
        or below it, as batched requests pass through the same check.
    """

    max_frames: int = 256
    max_pixels: int = 1920 * 1080
    max_batch: int = 8

    def validate(self) -> None:
        for field in ("max_frames", "max_pixels", "max_batch"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")


def _check_batch_and_frames(shape, limits: ServingLimits) -> list:
    return [
        tf.debugging.assert_greater_equal(
            shape[0], 1, message="the batch (dimension 0) must hold at least one video"
        ),
        tf.debugging.assert_less_equal(
            shape[0],
            limits.max_batch,
            message=f"the batch (dimension 0) must hold at most max_batch={limits.max_batch} videos",
        ),
        tf.debugging.assert_greater_equal(
            shape[1], 1, message="every video (dimension 1) must hold at least one frame"
        ),
        tf.debugging.assert_less_equal(
            shape[1],
            limits.max_frames,
            message=f"frames per video (dimension 1) must be at most max_frames={limits.max_frames}",
        ),
    ]


def _check_frame_size(height, width, limits: ServingLimits) -> list:
    height = tf.cast(height, tf.int64)
    width = tf.cast(width, tf.int64)
    return [
        tf.debugging.assert_greater_equal(
            tf.minimum(height, width), tf.constant(1, tf.int64), message="frames must not be empty"
        ),
        tf.debugging.assert_less_equal(
            height * width,
            tf.constant(limits.max_pixels, tf.int64),
            message=f"frame height x width must be at most max_pixels={limits.max_pixels}",
        ),
    ]


def checked_frames(frames: tf.Tensor, limits: ServingLimits) -> tf.Tensor:
    """uint8 [B, T, H, W, 3], passed through once every limit holds (else InvalidArgument).

    `tf.ensure_shape` checks the rank at run time: a signature's input spec alone does not stop
    a rank-4 tensor from reaching the graph.
    """
    frames = tf.ensure_shape(frames, [None, None, None, None, 3], name="check_frames_shape")
    shape = tf.shape(frames)
    checks = _check_batch_and_frames(shape, limits) + _check_frame_size(shape[2], shape[3], limits)
    with tf.control_dependencies(checks):
        return tf.identity(frames)


def checked_jpegs(jpegs: tf.Tensor, limits: ServingLimits) -> tf.Tensor:
    """JPEG strings [B, T], passed through once the limits hold, checked from the headers only.

    Frames of one video must share one size. A string that is not a JPEG fails in
    `extract_jpeg_shape` (InvalidArgument), before anything is decoded.
    """
    jpegs = tf.ensure_shape(jpegs, [None, None], name="check_jpeg_frames_shape")
    shape = tf.shape(jpegs)
    with tf.control_dependencies(_check_batch_and_frames(shape, limits)):
        flat = tf.reshape(jpegs, [-1])
    sizes = tf.map_fn(
        lambda jpeg: tf.io.extract_jpeg_shape(jpeg)[:2],
        flat,
        fn_output_signature=tf.TensorSpec([2], tf.int32),
    )
    sizes = tf.reshape(sizes, [shape[0], shape[1], 2])
    checks = _check_frame_size(sizes[..., 0], sizes[..., 1], limits)
    checks.append(
        tf.debugging.assert_equal(
            sizes,
            tf.broadcast_to(sizes[:, :1], tf.shape(sizes)),
            message="all JPEG frames of one video must have the same height and width",
        )
    )
    with tf.control_dependencies(checks):
        return tf.identity(jpegs)
