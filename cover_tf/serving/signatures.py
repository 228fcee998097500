"""The serving signatures of a CoVeR export, and the eager answer each must reproduce.

This module owns the list of signatures (`serving_signatures`): the exporter writes every entry
and its self-check compares every entry with the entry's eager Keras reference, so adding a
signature is one entry here (plus its test and README line).

Every signature preprocesses each video of the batch with `cover_tf.data.eval_preprocess` (the
function evaluation uses, so serving cannot drift from it) and turns the views into answers with
`cover_tf.models.multiview` (the functions evaluation and the predictors call):

  <head>, <head>_jpeg     per head:
    logits          float32 [B, C]  the logits averaged over the V views
    probabilities   float32 [B, C]  the softmax averaged over the V views (evaluation's score; with
                                    V > 1 it is not softmax(logits))
    top_k_indices   int32 [B, k]    classes by decreasing probability
    top_k_classes   string [B, k]   their names, looked up in a table initialised from an asset file
  serving_default         every head, outputs prefixed `<head>_logits`, `<head>_probabilities`, ...
  embedding, embedding_jpeg
    embedding       float32 [B, D]  the backbone's pooled feature averaged over the views of the
                                    embedding head's eval preprocessing, L2-normalised

Inputs: `frames` uint8 [B, T, H, W, 3] (any T and size), or `jpeg_frames` string [B, T] for the
`_jpeg` signatures. Requests outside `ServingLimits` fail inside the graph with an InvalidArgument
error whose message names the limit; wrong dtypes and ranks are rejected by the input spec. The
preprocessing check (`max_preprocess_bytes`) runs on the frames' sizes once the input checks
pass, before any frame is decoded or resized.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from cover_tf.data.preprocessing import eval_preprocess
from cover_tf.models import multiview
from cover_tf.serving import limits as serving_limits
from cover_tf.serving.heads import HeadSpec
from cover_tf.serving.limits import ServingLimits, checked_frames, checked_jpegs

OUTPUTS = ("logits", "probabilities", "top_k_indices", "top_k_classes")
FRAMES_INPUT = "frames"
JPEG_INPUT = "jpeg_frames"
JPEG_SUFFIX = "_jpeg"
DEFAULT_SIGNATURE = "serving_default"
EMBEDDING_SIGNATURE = "embedding"
EMBEDDING_OUTPUT = "embedding"

__all__ = [
    "DEFAULT_SIGNATURE",
    "EMBEDDING_OUTPUT",
    "EMBEDDING_SIGNATURE",
    "FRAMES_INPUT",
    "JPEG_INPUT",
    "JPEG_SUFFIX",
    "OUTPUTS",
    "ServingLimits",
    "Signature",
    "serving_signatures",
]


@dataclasses.dataclass(frozen=True)
class Signature:
    """One serving signature of the export.

    Args:
      name: the signature key (TF Serving's `signature_name`).
      function: the serving function; its one argument's name is the input's name.
      input_spec: the input's tf.TensorSpec (`frames_spec()` or `jpeg_spec()`).
      reference: the eager Keras answer, input batch -> {output: np.ndarray}, for the float
        outputs the export's self-check compares.
      class_names: {output prefix: class names}: each `<prefix>top_k_classes` must name
        `<prefix>top_k_indices` with these.
    """

    name: str
    function: Callable
    input_spec: tf.TensorSpec
    reference: Callable
    class_names: dict = dataclasses.field(default_factory=dict)


def frames_spec() -> tf.TensorSpec:
    return tf.TensorSpec([None, None, None, None, 3], tf.uint8, name=FRAMES_INPUT)


def jpeg_spec() -> tf.TensorSpec:
    return tf.TensorSpec([None, None], tf.string, name=JPEG_INPUT)


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


def reference_views(model, spec: HeadSpec, videos) -> tf.Tensor:
    """The same views, eagerly, one `eval_preprocess` call per video: [B, V, T', c, c, 3]."""
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std
    return tf.stack([eval_preprocess(video, spec.eval_config, mean, std) for video in videos])


def reference_probabilities(model, spec: HeadSpec, videos) -> np.ndarray:
    """Evaluation's answer, eagerly: [B, C] softmax of the head averaged over its views."""
    views = reference_views(model, spec, videos)
    return np.asarray(multiview.view_probabilities(model, spec.name, views))


def reference_embedding(model, spec: HeadSpec, videos) -> np.ndarray:
    """The embedding, eagerly, on `spec`'s views: [B, D] float32, L2-normalised."""
    return np.asarray(multiview.view_embedding(model, reference_views(model, spec, videos)))


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


def head_outputs(model, spec: HeadSpec, features, table, top_k: int) -> dict:
    """The four outputs of one head from the features of B x V views (see the module doc)."""
    outputs = multiview.head_scores(model, spec.name, features, spec.num_views)
    top = tf.math.top_k(outputs["probabilities"], k=min(top_k, len(spec.class_names)))
    outputs["top_k_indices"] = top.indices
    outputs["top_k_classes"] = table.lookup(tf.cast(top.indices, tf.int64))
    return outputs


def _with_input(body, jpeg: bool, limits: ServingLimits, configs):
    """`body(videos)` behind the input checks and the check of their preprocessing under the
    eval `configs`, as a function whose argument names the input."""

    # The argument names become the signatures' input names.
    def serve_frames(frames):
        frames = checked_frames(frames, limits)
        return body(serving_limits.checked_preprocessing(frames, configs, limits))

    def serve_jpeg_frames(jpeg_frames):
        jpeg_frames = checked_jpegs(jpeg_frames, limits)
        return body(serving_limits.checked_preprocessing(jpeg_frames, configs, limits))

    return serve_jpeg_frames if jpeg else serve_frames


def _head_signature(model, spec, table, limits, top_k, jpeg) -> Signature:
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std

    def outputs(videos):
        features = multiview.view_features(model, batch_views(videos, spec, mean, std))
        return head_outputs(model, spec, features, table, top_k)

    return Signature(
        name=spec.name + (JPEG_SUFFIX if jpeg else ""),
        function=_with_input(outputs, jpeg, limits, [spec.eval_config]),
        input_spec=jpeg_spec() if jpeg else frames_spec(),
        reference=lambda videos: {"probabilities": reference_probabilities(model, spec, videos)},
        class_names={"": spec.class_names},
    )


def _all_heads_signature(model, specs, tables, limits, top_k) -> Signature:
    """uint8 frames, every head: one backbone pass per distinct eval preprocessing."""
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std
    groups = {}
    for spec in specs.values():
        groups.setdefault(spec.eval_key(), []).append(spec)

    def outputs(videos):
        # Every group's views before any backbone pass: preprocessing never runs beside the
        # backbone, whose activation reserve it may use (`max_preprocess_bytes`).
        views = [batch_views(videos, group[0], mean, std) for group in groups.values()]
        with tf.control_dependencies(views):
            views = [tf.identity(view) for view in views]
        answers = {}
        for group, group_views in zip(groups.values(), views, strict=True):
            features = multiview.view_features(model, group_views)
            for spec in group:
                head = head_outputs(model, spec, features, tables[spec.name], top_k)
                answers.update({f"{spec.name}_{key}": value for key, value in head.items()})
        return answers

    def reference(videos):
        return {
            f"{head}_probabilities": reference_probabilities(model, spec, videos)
            for head, spec in specs.items()
        }

    return Signature(
        name=DEFAULT_SIGNATURE,
        function=_with_input(
            outputs, False, limits, [group[0].eval_config for group in groups.values()]
        ),
        input_spec=frames_spec(),
        reference=reference,
        class_names={f"{head}_": spec.class_names for head, spec in specs.items()},
    )


def _embedding_signature(model, spec, limits, jpeg) -> Signature:
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std

    def outputs(videos):
        features = multiview.view_features(model, batch_views(videos, spec, mean, std))
        return {EMBEDDING_OUTPUT: multiview.embedding(features, spec.num_views)}

    return Signature(
        name=EMBEDDING_SIGNATURE + (JPEG_SUFFIX if jpeg else ""),
        function=_with_input(outputs, jpeg, limits, [spec.eval_config]),
        input_spec=jpeg_spec() if jpeg else frames_spec(),
        reference=lambda videos: {EMBEDDING_OUTPUT: reference_embedding(model, spec, videos)},
    )


def serving_signatures(
    model, specs: dict, tables: dict, limits: ServingLimits, top_k: int, embedding_head: str
) -> list[Signature]:
    """Every signature of the export, in the order they are written.

    Args:
      model: a CoVeRModel.
      specs: {head: HeadSpec}.
      tables: {head: class_name_table}.
      limits: the ServingLimits every signature checks (`max_preprocess_bytes` None: the
        activation reserve of `max_batch` videos, `limits.resolve`).
      top_k: k of the top_k outputs (capped at each head's class count).
      embedding_head: the head whose eval preprocessing (views) the embedding signatures use.
    Raises ValueError when two signatures share a name (a head named like another signature).
    """
    if embedding_head not in specs:
        raise ValueError(f"embedding head {embedding_head!r} is not one of the heads {list(specs)}")
    limits = serving_limits.resolve(limits, model, specs)
    listed = [_all_heads_signature(model, specs, tables, limits, top_k)]
    for head, spec in specs.items():
        for jpeg in (False, True):
            listed.append(_head_signature(model, spec, tables[head], limits, top_k, jpeg))
    for jpeg in (False, True):
        listed.append(_embedding_signature(model, specs[embedding_head], limits, jpeg))
    names = [signature.name for signature in listed]
    if len(set(names)) != len(names):
        raise ValueError(f"head names {list(specs)} give colliding signature names {names}")
    return listed
