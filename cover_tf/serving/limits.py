"""The largest request an export accepts, and the in-graph checks that refuse larger ones.

Every serving signature passes its input through `checked_frames` or `checked_jpegs`: a request
outside the limits fails inside the graph with an InvalidArgument error whose message names the
limit (TF Serving answers INVALID_ARGUMENT / HTTP 400 with it).

The shape limits (frames, pixels, batch) bound each dimension; `max_request_bytes` bounds their
product, the request's uint8 frames (B x T x H x W x 3 bytes; for JPEG frames the encoded
strings' bytes), and comes from a memory budget (`limits_for_budget`): what the server may hold,
minus its own resident size, the model's weights and the activations of `max_batch` videos' views,
divided by the resident memory one request adds per byte of its frames (measured with
`export/request_memory.py`).
"""

import dataclasses

import tensorflow as tf

GIB = 1024**3
DEFAULT_MEMORY_BUDGET_BYTES = 8 * GIB
# Resident memory one request takes per byte of its uint8 frames: the received request (1.0)
# plus what parsing it, the input tensor and the signature's run add (4.04 for 256 frames at
# 1080p, 4.14 for 64: export/request_memory.py, see export/README.md), rounded up.
PEAK_BYTES_PER_INPUT_BYTE = 5.2
# The serving process before any request, weights excluded (TF runtime, graph, tables).
SERVER_BASE_BYTES = GIB


def view_activation_bytes(
    num_frames: int, crop_size: int, patch_size: int, hidden_size: int, num_heads: int
) -> int:
    """Upper estimate of the float32 activations one view holds while a block runs.

    Tokens x width x 16 (block input, norm, q/k/v, attention output, 4x MLP hidden and its
    GELU) plus the temporal and spatial attention maps of all heads, twice (scores, softmax).
    """
    patches = (crop_size // patch_size) ** 2 + 1
    tokens = num_frames * patches
    maps = num_heads * num_frames * patches * (num_frames + patches)
    return 4 * (16 * tokens * hidden_size + 2 * maps)


def request_bytes_for_budget(
    memory_budget_bytes: int, weight_bytes: int, views_bytes: int, max_batch: int
) -> int:
    """(budget - SERVER_BASE_BYTES - weights - max_batch x views) / PEAK_BYTES_PER_INPUT_BYTE.

    `views_bytes` is the activation estimate of one video's views (the largest head's).
    Raises ValueError, naming what the budget must hold, when nothing is left for a request.
    """
    reserved = SERVER_BASE_BYTES + weight_bytes + max_batch * views_bytes
    request = int((memory_budget_bytes - reserved) / PEAK_BYTES_PER_INPUT_BYTE)
    if request < 1:
        raise ValueError(
            f"a memory budget of {memory_budget_bytes / GIB:.3g} GiB leaves nothing for a request: "
            f"the server ({SERVER_BASE_BYTES / GIB:.3g} GiB), the weights "
            f"({weight_bytes / GIB:.3g} GiB) and max_batch={max_batch} videos' views "
            f"({max_batch * views_bytes / GIB:.3g} GiB) need more; raise the budget or lower "
            "max_batch"
        )
    return request


# The default limits: an 8 GiB server holding B/16 (86M weights) at 8 x 224, 1 clip x 3 crops.
_DEFAULT_REQUEST_BYTES = request_bytes_for_budget(
    DEFAULT_MEMORY_BUDGET_BYTES,
    weight_bytes=4 * 86_000_000,
    views_bytes=3 * view_activation_bytes(8, 224, 16, 768, 12),
    max_batch=8,
)


@dataclasses.dataclass(frozen=True)
class ServingLimits:
    """Largest request an export accepts.

    Attributes:
      max_frames: frames per video (dimension 1 of the input).
      max_pixels: height x width of one frame.
      max_batch: videos per request (dimension 0); keep TF Serving's batching max_batch_size at
        or below it, as batched requests pass through the same check.
      max_request_bytes: bytes of one request's frames: B x T x H x W x 3 for uint8 frames, the
        summed string lengths for JPEG frames. Default: what an 8 GiB server affords B/16 at
        8 x 224 with 3 views and max_batch 8 (`limits_for_budget` derives it for a model).
      memory_budget_bytes: the server memory `max_request_bytes` was derived from (None when it
        was given directly); recorded in the export's metadata.
    """

    max_frames: int = 256
    max_pixels: int = 1920 * 1080
    max_batch: int = 8
    max_request_bytes: int = _DEFAULT_REQUEST_BYTES
    memory_budget_bytes: int | None = DEFAULT_MEMORY_BUDGET_BYTES

    def validate(self) -> None:
        for field in ("max_frames", "max_pixels", "max_batch", "max_request_bytes"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")


def limits_for_budget(
    memory_budget_bytes: int,
    model,
    specs: dict,
    max_frames: int = 256,
    max_pixels: int = 1920 * 1080,
    max_batch: int = 8,
) -> ServingLimits:
    """ServingLimits whose largest request fits a server of `memory_budget_bytes` (see
    `request_bytes_for_budget`), for `model` (a CoVeRModel) and its heads' views (`specs`)."""
    backbone = model.backbone
    views = max(
        spec.num_views
        * view_activation_bytes(
            1 if spec.eval_config.is_image else spec.eval_config.num_frames,
            spec.eval_config.crop_size,
            backbone.patch_size,
            backbone.hidden_size,
            backbone.num_heads,
        )
        for spec in specs.values()
    )
    request = request_bytes_for_budget(
        memory_budget_bytes, 4 * model.count_params(), views, max_batch
    )
    return ServingLimits(max_frames, max_pixels, max_batch, request, int(memory_budget_bytes))


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


def _check_bytes(size, what: str, limits: ServingLimits):
    budget = ""
    if limits.memory_budget_bytes is not None:
        budget = f" (the export's memory budget: {limits.memory_budget_bytes / GIB:.3g} GiB)"
    return tf.debugging.assert_less_equal(
        size,
        tf.constant(limits.max_request_bytes, tf.int64),
        message=(
            f"the request's {what} must take at most max_request_bytes={limits.max_request_bytes}"
            f" bytes{budget}; send fewer or smaller frames, or fewer videos per request"
        ),
    )


def checked_frames(frames: tf.Tensor, limits: ServingLimits) -> tf.Tensor:
    """uint8 [B, T, H, W, 3], passed through once every limit holds (else InvalidArgument).

    `tf.ensure_shape` checks the rank at run time: a signature's input spec alone does not stop
    a rank-4 tensor from reaching the graph.
    """
    frames = tf.ensure_shape(frames, [None, None, None, None, 3], name="check_frames_shape")
    shape = tf.shape(frames)
    checks = _check_batch_and_frames(shape, limits) + _check_frame_size(shape[2], shape[3], limits)
    checks.append(_check_bytes(tf.reduce_prod(tf.cast(shape, tf.int64)), "frames", limits))
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
    encoded = tf.reduce_sum(tf.cast(tf.strings.length(flat), tf.int64))
    checks.append(_check_bytes(encoded, "JPEG frames", limits))
    checks.append(
        tf.debugging.assert_equal(
            sizes,
            tf.broadcast_to(sizes[:, :1], tf.shape(sizes)),
            message="all JPEG frames of one video must have the same height and width",
        )
    )
    with tf.control_dependencies(checks):
        return tf.identity(jpegs)
