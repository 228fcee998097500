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

Before the backbone runs, each head's eval preprocessing decodes the sampled frames and resizes
their short side to the head's `eval_short_side`: a frame far from the model's aspect ratio
(1 x 65,500) passes every limit above yet resizes to billions of pixels. `checked_preprocessing`
therefore computes every frame's resized size from its height and width (the headers, for JPEG
frames) before anything is decoded, and refuses a request whose preprocessing would take more
than the budget leaves it (`preprocess_allowance`): what the request's frames leave of its share
(PEAK_BYTES_PER_INPUT_BYTE x max_request_bytes), plus `max_preprocess_bytes`, by default the
activations the budget reserves for `max_batch` videos, which are free while frames are resized
(the backbone runs on the views once every video is preprocessed). Peak memory then stays
within the budget whatever the aspect ratio.
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
# Preprocessing, per sampled frame of a video: the decoded or gathered uint8 frame (3 bytes a
# pixel), the float32 frame resized to the short side (12 bytes a pixel; 13.5-13.7 measured
# with what the resize and crops add: tests/reliability/test_serving_memory.py), and the resize's
# float32 working copy, scaled along one axis (resized height x source width, or the reverse).
FRAME_BYTES_PER_PIXEL = 3
RESIZED_BYTES_PER_PIXEL = 16
WORKING_BYTES_PER_PIXEL = 12


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
      max_preprocess_bytes: memory that preprocessing a request (`preprocess_bytes`: its sampled
        frames decoded and resized to each head's short side) may take besides what its frames
        leave of the request's share (`preprocess_allowance`). None: the activations of
        `max_batch` videos' views (`view_reserve_bytes`), which the budget reserves
        (`limits_for_budget` fills it in; `resolve` for a model).
    """

    max_frames: int = 256
    max_pixels: int = 1920 * 1080
    max_batch: int = 8
    max_request_bytes: int = _DEFAULT_REQUEST_BYTES
    memory_budget_bytes: int | None = DEFAULT_MEMORY_BUDGET_BYTES
    max_preprocess_bytes: int | None = None

    def validate(self) -> None:
        for field in ("max_frames", "max_pixels", "max_batch", "max_request_bytes"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.max_preprocess_bytes is not None and self.max_preprocess_bytes < 1:
            raise ValueError(
                f"max_preprocess_bytes must be >= 1 or None, got {self.max_preprocess_bytes}"
            )


def views_bytes(model, specs: dict) -> int:
    """`view_activation_bytes` of one video's views, for the head whose views take the most."""
    backbone = model.backbone
    return max(
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


def view_reserve_bytes(model, specs: dict, max_batch: int) -> int:
    """The memory a budget reserves for the activations of `max_batch` videos' views."""
    return max_batch * views_bytes(model, specs)


def resolve(limits: ServingLimits, model, specs: dict) -> ServingLimits:
    """`limits` with `max_preprocess_bytes` filled in for `model` where it is None."""
    if limits.max_preprocess_bytes is not None:
        return limits
    reserve = view_reserve_bytes(model, specs, limits.max_batch)
    return dataclasses.replace(limits, max_preprocess_bytes=reserve)


def limits_for_budget(
    memory_budget_bytes: int,
    model,
    specs: dict,
    max_frames: int = 256,
    max_pixels: int = 1920 * 1080,
    max_batch: int = 8,
) -> ServingLimits:
    """ServingLimits whose largest request fits a server of `memory_budget_bytes` (see
    `request_bytes_for_budget`), for `model` (a CoVeRModel) and its heads' views (`specs`);
    preprocessing may take the views' activation reserve (`max_preprocess_bytes`)."""
    views = views_bytes(model, specs)
    request = request_bytes_for_budget(
        memory_budget_bytes, 4 * model.count_params(), views, max_batch
    )
    return ServingLimits(
        max_frames, max_pixels, max_batch, request, int(memory_budget_bytes), max_batch * views
    )


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


def sampled_frames(config) -> int:
    """Frames `eval_preprocess` gathers from one video: eval_clips x num_frames (images: 1)."""
    return 1 if config.is_image else config.eval_clips * config.num_frames


def frame_sizes(videos: tf.Tensor) -> tf.Tensor:
    """float64 [B, 2]: (height, width) of each video's frames, of JPEG frames from the first
    frame's header (nothing decoded; `checked_jpegs` makes the frames of a video share it)."""
    if videos.dtype == tf.string:
        sizes = tf.map_fn(
            lambda jpeg: tf.io.extract_jpeg_shape(jpeg)[:2],
            videos[:, 0],
            fn_output_signature=tf.TensorSpec([2], tf.int32),
        )
    else:
        shape = tf.shape(videos)
        sizes = tf.tile(shape[None, 2:4], tf.stack([shape[0], 1]))
    return tf.cast(sizes, tf.float64)


def preprocess_bytes(sizes: tf.Tensor, configs) -> tf.Tensor:
    """float64 scalar: what eval preprocessing of videos of frame `sizes` [B, 2] takes under
    each of `configs` (run side by side): per sampled frame the uint8 frame, the float32 frame
    resized to the short side (the size `video_ops.resize_short_side` computes) and the
    resize's working copy (see FRAME_BYTES_PER_PIXEL and the two after it)."""
    height, width = sizes[:, 0], sizes[:, 1]
    total = tf.constant(0.0, tf.float64)
    for config in configs:
        short_side = float(config.eval_short_side)
        scale = short_side / tf.maximum(tf.minimum(height, width), 1.0)
        resized_height = tf.maximum(tf.round(height * scale), short_side)
        resized_width = tf.maximum(tf.round(width * scale), short_side)
        working = tf.maximum(resized_height * width, height * resized_width)
        per_frame = (
            FRAME_BYTES_PER_PIXEL * height * width
            + RESIZED_BYTES_PER_PIXEL * resized_height * resized_width
            + WORKING_BYTES_PER_PIXEL * working
        )
        total += sampled_frames(config) * tf.reduce_sum(per_frame)
    return total


def request_bytes(videos: tf.Tensor) -> tf.Tensor:
    """int64 scalar: what `max_request_bytes` counts of a request (uint8 frames or JPEGs)."""
    if videos.dtype == tf.string:
        return tf.reduce_sum(tf.cast(tf.strings.length(videos), tf.int64))
    return tf.reduce_prod(tf.cast(tf.shape(videos), tf.int64))


def preprocess_allowance(input_bytes, limits: ServingLimits):
    """What preprocessing a request of `input_bytes` may take: the part of the request's share
    of the budget (PEAK_BYTES_PER_INPUT_BYTE x max_request_bytes) its frames leave, plus
    `max_preprocess_bytes` (free until the backbone runs). Works on numbers and tensors."""
    return (
        PEAK_BYTES_PER_INPUT_BYTE * (limits.max_request_bytes - input_bytes)
        + limits.max_preprocess_bytes
    )


def checked_preprocessing(videos: tf.Tensor, configs, limits: ServingLimits) -> tf.Tensor:
    """`videos` (checked uint8 frames or JPEG strings), passed through once their preprocessing
    under the eval `configs` fits `preprocess_allowance` (else InvalidArgument naming
    `max_preprocess_bytes`).

    Runs on the frames' sizes only (JPEG headers), before anything is decoded or resized. With
    it a request's peak stays within the budget: SERVER_BASE_BYTES + weights +
    PEAK_BYTES_PER_INPUT_BYTE x its bytes + the larger of its preprocessing and the backbone's
    activations (`max_preprocess_bytes` covers these), whatever the frames' aspect ratio.
    """
    if limits.max_preprocess_bytes is None:
        raise ValueError("max_preprocess_bytes is None: `resolve` the limits for the model first")
    short_sides = " and ".join(str(side) for side in sorted({c.eval_short_side for c in configs}))
    budget = ""
    if limits.memory_budget_bytes is not None:
        budget = f" (the export memory budget: {limits.memory_budget_bytes / GIB:.3g} GiB)"
    needed = preprocess_bytes(frame_sizes(videos), configs)
    allowance = preprocess_allowance(tf.cast(request_bytes(videos), tf.float64), limits)
    cap = 2.0**62  # int64 figures for the message
    needed = tf.cast(tf.minimum(needed, cap), tf.int64)
    allowance = tf.cast(tf.minimum(allowance, cap), tf.int64)
    message = (
        f"resizing the frames to the model short side ({short_sides} pixels) must take at most "
        f"max_preprocess_bytes={limits.max_preprocess_bytes} bytes plus "
        f"{PEAK_BYTES_PER_INPUT_BYTE:g} x what the frames leave of max_request_bytes="
        f"{limits.max_request_bytes}{budget}; frames far from a usual aspect ratio (1 x 65500) "
        "resize to too many pixels: crop or pad them, or send smaller frames or fewer videos "
        "per request"
    )
    check = tf.debugging.Assert(
        needed <= allowance, [message, "bytes needed:", needed, "allowed:", allowance]
    )
    with tf.control_dependencies([check]):
        return tf.identity(videos)
