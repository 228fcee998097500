"""Multi-view inference: the one place that turns a video's eval views into its answer.

Evaluation (`training/evaluation.py`), the export's serving signatures and their self-check
(`serving/signatures.py`) and the predictors (`serving/predictors.py`) all call these functions,
so the three cannot disagree on how views are folded, averaged or normalised.

A batch of views is `[B, V, T, H, W, 3]`: B videos, V = clips x crops views each (the output of
`cover_tf.data.eval_preprocess`, stacked). The views are folded into the batch, the backbone runs
once on all B x V views, and per video:

  logits        the head's logits averaged over the V views                     [B, C]
  probabilities the head's softmax averaged over the V views (evaluation's      [B, C]
                score; with V > 1 it is not softmax(logits))
  embedding     the backbone's pooled feature averaged over the V views, then   [B, D]
                L2-normalised (cosine similarity = dot product)

Written in `keras.ops`, so the same code runs eagerly, inside `tf.function` / SavedModel graphs
and on every Keras backend.
"""

from keras import ops

EMBEDDING_EPSILON = 1e-12


def fold_views(views):
    """`[B, V, ...]` -> `[B * V, ...]` (video-major: row b * V + v is view v of video b)."""
    shape = ops.shape(views)
    return ops.reshape(views, (-1, *shape[2:]))


def average_views(values, num_views):
    """`[B * V, ...]` float -> `[B, ...]`: the mean over each video's V consecutive rows."""
    shape = ops.shape(values)
    return ops.mean(ops.reshape(values, (-1, num_views, *shape[1:])), axis=1)


def view_features(model, views):
    """The backbone's pooled feature of every view: `[B, V, T, H, W, 3]` -> `[B * V, D]`."""
    return model.backbone(fold_views(views), training=False)


def head_scores(model, head: str, features, num_views) -> dict:
    """{"logits", "probabilities"} `[B, C]` float32 of one head from `[B * V, D]` features."""
    logits = ops.cast(model.heads[head](features, training=False), "float32")
    return {
        "logits": average_views(logits, num_views),
        "probabilities": average_views(ops.softmax(logits, axis=-1), num_views),
    }


def embedding(features, num_views):
    """`[B * V, D]` features -> `[B, D]` float32: mean over the views, L2-normalised."""
    mean = average_views(ops.cast(features, "float32"), num_views)
    norm = ops.sqrt(ops.sum(ops.square(mean), axis=-1, keepdims=True))
    return mean / ops.maximum(norm, EMBEDDING_EPSILON)


def view_probabilities(model, head: str, views):
    """`[B, V, T, H, W, 3]` views -> `[B, C]` softmax of `head` averaged over the V views."""
    features = view_features(model, views)
    return head_scores(model, head, features, ops.shape(views)[1])["probabilities"]


def view_embedding(model, views):
    """`[B, V, T, H, W, 3]` views -> `[B, D]` L2-normalised view-averaged backbone feature."""
    return embedding(view_features(model, views), ops.shape(views)[1])
