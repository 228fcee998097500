"""The serving functions of a CoVeR export: input checks, eval preprocessing in the graph, outputs.

Every signature preprocesses each video of the batch with `cover_tf.data.eval_preprocess` (the
function evaluation uses, so serving cannot drift from it), runs the model on all V views
(clips x crops) and returns, per head:

  logits          float32 [B, C]  the logits averaged over the V views
  probabilities   float32 [B, C]  the softmax averaged over the V views (evaluation's score; with
                                  V > 1 it is not softmax(logits))
  top_k_indices   int32 [B, k]    classes by decreasing probability
  top_k_classes   string [B, k]   their names, looked up in a table initialised from an asset file

In the all-heads signature the names are prefixed: `<head>_logits`, `<head>_probabilities`, ...

Requests outside `ServingLimits` fail inside the graph with an InvalidArgument error whose
message names the limit; wrong dtypes and ranks are rejected by the signature's input spec.
"""

import dataclasses

import tensorflow as tf

from cover_tf.data.preprocessing import eval_preprocess
from cover_tf.serving.heads import HeadSpec

OUTPUTS = ("logits", "probabilities", "top_k_indices", "top_k_classes")
FRAMES_INPUT = "frames"
JPEG_INPUT = "jpeg_frames"
JPEG_SUFFIX = "_jpeg"
DEFAULT_SIGNATURE = "serving_default"


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


def frames_spec() -> tf.TensorSpec:
    return tf.TensorSpec([None, None, None, None, 3], tf.uint8, name=FRAMES_INPUT)


def jpeg_spec() -> tf.TensorSpec:
    return tf.TensorSpec([None, None], tf.string, name=JPEG_INPUT)


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


def batch_views(videos: tf.Tensor, spec: HeadSpec, mean, std) -> tf.Tensor:
    """eval_preprocess over a batch: [B, T, H, W, 3] uint8 or [B, T] JPEGs -> [B, V, T', c, c, 3]."""
    config = spec.eval_config
    length = 1 if config.is_image else config.num_frames
    view_spec = tf.TensorSpec(
        [spec.num_views, length, config.crop_size, config.crop_size, 3], tf.float32
    )
    return tf.map_fn(
        lambda video: eval_preprocess(video, config, mean, std),
        videos,
        fn_output_signature=view_spec,
    )


def view_features(model, views: tf.Tensor) -> tf.Tensor:
    """Backbone features of every view: [B, V, T, c, c, 3] -> [B * V, D]."""
    flat = tf.reshape(views, tf.concat([[-1], tf.shape(views)[2:]], axis=0))
    return model.backbone(flat, training=False)


def head_outputs(model, spec: HeadSpec, features, batch_size, table, top_k: int) -> dict:
    """The four outputs of one head from the features of B x V views (see the module doc)."""
    logits = tf.cast(model.heads[spec.name](features, training=False), tf.float32)
    num_classes = len(spec.class_names)
    logits = tf.reshape(logits, [batch_size, spec.num_views, num_classes])
    probabilities = tf.reduce_mean(tf.nn.softmax(logits, axis=-1), axis=1)
    top = tf.math.top_k(probabilities, k=min(top_k, num_classes))
    return {
        "logits": tf.reduce_mean(logits, axis=1),
        "probabilities": probabilities,
        "top_k_indices": top.indices,
        "top_k_classes": table.lookup(tf.cast(top.indices, tf.int64)),
    }


def class_name_table(asset_path: str) -> tf.lookup.StaticHashTable:
    """int64 class index -> class name, initialised from a text file of one name per line.

    Saved with a SavedModel, the file becomes one of its assets and the table is re-initialised
    from the copy under `assets/` when the model is loaded.
    """
    initializer = tf.lookup.TextFileInitializer(
        asset_path,
        key_dtype=tf.int64,
        key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        value_dtype=tf.string,
        value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
    )
    return tf.lookup.StaticHashTable(initializer, default_value="<unknown>")


def make_head_fn(model, spec: HeadSpec, table, limits: ServingLimits, top_k: int, jpeg: bool):
    """The serving function of one head (the head bound here, in a closure)."""
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std

    def outputs(videos):
        views = batch_views(videos, spec, mean, std)
        features = view_features(model, views)
        return head_outputs(model, spec, features, tf.shape(videos)[0], table, top_k)

    # The argument names become the signatures' input names.
    def serve_head(frames):
        return outputs(checked_frames(frames, limits))

    def serve_head_jpeg(jpeg_frames):
        return outputs(checked_jpegs(jpeg_frames, limits))

    return serve_head_jpeg if jpeg else serve_head


def make_all_heads_fn(model, specs: dict, tables: dict, limits: ServingLimits, top_k: int):
    """The all-heads function (uint8 frames): one backbone pass per distinct eval preprocessing."""
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std
    groups = {}
    for spec in specs.values():
        groups.setdefault(spec.eval_key(), []).append(spec)

    def serve_all_heads(frames):
        frames = checked_frames(frames, limits)
        batch_size = tf.shape(frames)[0]
        outputs = {}
        for group in groups.values():
            features = view_features(model, batch_views(frames, group[0], mean, std))
            for spec in group:
                head = head_outputs(model, spec, features, batch_size, tables[spec.name], top_k)
                outputs.update({f"{spec.name}_{key}": value for key, value in head.items()})
        return outputs

    return serve_all_heads
