"""Classify and embed decoded videos with a SavedModel export or a `.keras` model.

Both predictors take uint8 frames [T, H, W, 3] and answer the way evaluation scores:
`predict` returns `{head: [{"index", "class", "probability"}]}` with the probabilities averaged
over the head's eval views, `probabilities` the same for every class (`{head: float32 [C]}`,
names from `class_names`), `embed` the backbone's pooled feature averaged over the embedding
head's eval views, L2-normalised (float32 [D], or [B, D] for a batch [B, T, H, W, 3]).
`max_frames`, `max_pixels` and `max_request_bytes` are the largest input the model takes (an
export's limits; None for a `.keras` model), for callers that fit their frames to them.
`SavedModelPredictor` calls the export's signatures (so it checks the export end to end);
`KerasPredictor` runs `eval_preprocess` and `cover_tf.models.multiview` on the Keras model (a
traced function per head for the probabilities, eagerly for embeddings).
"""

import json

import numpy as np
import tensorflow as tf

from cover_tf.data.preprocessing import eval_preprocess
from cover_tf.models import multiview
from cover_tf.serving import client, signatures
from cover_tf.serving.heads import SourceError, load_source, read_text
from cover_tf.serving.versions import METADATA_FILE, resolve_export
from cover_tf.workdir import join


def _video_batch(frames: np.ndarray) -> tuple[np.ndarray, bool]:
    """(uint8 [B, T, H, W, 3], whether one video [T, H, W, 3] was given)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (4, 5) or frames.shape[-1] != 3:
        raise ValueError(
            f"frames must be uint8 [T, H, W, 3] or [B, T, H, W, 3], got {frames.dtype} "
            f"{frames.shape}"
        )
    single = frames.ndim == 4
    return (frames[None] if single else frames), single


class SavedModelPredictor:
    """Runs an export's signatures: `serving_default` for every head, `<head>` for one,
    `embedding` for `embed`.

    Args:
      path: a SavedModel version folder or an export base (its highest complete version is
        used), on any tf.io.gfile filesystem.
    """

    def __init__(self, path):
        self.path = resolve_export(path)
        try:
            self.model = tf.saved_model.load(self.path)
        except (OSError, ValueError, tf.errors.OpError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            raise SourceError(f"the export {self.path!r} cannot be loaded: {reason}") from error
        metadata = join(self.path, METADATA_FILE)
        self.metadata = (
            json.loads(read_text(metadata, "metadata")) if tf.io.gfile.exists(metadata) else {}
        )
        self._class_names = {}
        names = set(self.model.signatures)
        not_heads = {signatures.DEFAULT_SIGNATURE, signatures.EMBEDDING_SIGNATURE}
        self.head_names = tuple(
            sorted(self.metadata.get("heads"))
            if self.metadata.get("heads")
            else sorted(
                name
                for name in names
                if name not in not_heads and name + signatures.JPEG_SUFFIX in names
            )
        )

    @property
    def max_frames(self):
        return self.metadata.get("limits", {}).get("max_frames")

    @property
    def max_pixels(self):
        return self.metadata.get("limits", {}).get("max_pixels")

    @property
    def max_request_bytes(self):
        return self.metadata.get("limits", {}).get("max_request_bytes")

    def _names(self, head: str) -> dict:
        """{index: name} of a head: the export's `assets/<head>.classes.txt` (the file its name
        table reads), else the names its outputs gave so far."""
        if head not in self._class_names:
            names = {}
            asset = join(self.path, "assets", f"{head}.classes.txt")
            if tf.io.gfile.exists(asset):
                with tf.io.gfile.GFile(asset, "r") as file:
                    names = dict(enumerate(file.read().splitlines()))
            self._class_names[head] = names
        return self._class_names[head]

    def class_names(self, head: str, count: int | None = None) -> list:
        """The head's `count` class names in index order (`class_<i>` where none is known);
        `count` defaults to the head's class count in the export's metadata."""
        names = self._names(head)
        if count is None:
            count = self.metadata.get("heads", {}).get(head, {}).get("num_classes")
            count = count or (max(names) + 1 if names else 0)
        return [names.get(index, f"class_{index}") for index in range(count)]

    def probabilities(self, frames: np.ndarray, head=None) -> dict:
        """{head: float32 [C]}: every class's probability, averaged over the head's eval views,
        for uint8 frames [T, H, W, 3] (InvalidArgumentError if the export refuses them)."""
        batch = tf.constant(np.asarray(frames, np.uint8)[None])
        if head is None:
            outputs = self.model.signatures[signatures.DEFAULT_SIGNATURE](frames=batch)
            heads, prefixes = self.head_names, [name + "_" for name in self.head_names]
        elif head in self.head_names:
            outputs = self.model.signatures[head](frames=batch)
            heads, prefixes = (head,), ("",)
        else:
            raise ValueError(f"unknown head {head!r}; the export has {list(self.head_names)}")
        answers = {}
        for name, prefix in zip(heads, prefixes, strict=True):
            answers[name] = np.asarray(outputs[prefix + "probabilities"], np.float32)[0]
            names = self._names(name)
            for entry in client.top_classes(outputs, prefix=prefix):
                names.setdefault(entry["index"], entry["class"])
        return answers

    def predict(self, frames: np.ndarray, head=None, top: int = 5) -> dict:
        """{head: top classes} for uint8 frames [T, H, W, 3] (InvalidArgumentError if refused)."""
        batch = tf.constant(np.asarray(frames, np.uint8)[None])
        if head is None:
            outputs = self.model.signatures[signatures.DEFAULT_SIGNATURE](frames=batch)
            return {
                name: client.top_classes(outputs, top, prefix=name + "_")
                for name in self.head_names
            }
        if head not in self.head_names:
            raise ValueError(f"unknown head {head!r}; the export has {list(self.head_names)}")
        return {head: client.top_classes(self.model.signatures[head](frames=batch), top)}

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """uint8 [T, H, W, 3] -> float32 [D]; uint8 [B, T, H, W, 3] -> [B, D] (L2-normalised)."""
        if signatures.EMBEDDING_SIGNATURE not in self.model.signatures:
            raise ValueError(
                f"the export {str(self.path)!r} has no {signatures.EMBEDDING_SIGNATURE!r} "
                "signature (exported before embeddings existed): export it again"
            )
        batch, single = _video_batch(frames)
        outputs = self.model.signatures[signatures.EMBEDDING_SIGNATURE](frames=tf.constant(batch))
        embeddings = client.embedding(outputs)
        return embeddings[0] if single else embeddings


class KerasPredictor:
    """Runs a `.keras` CoVeR model on `eval_preprocess`'s views.

    Args:
      path: the `.keras` file.
      datasets: optional datasets.json (class names, eval preprocessing); default: one centre
        view at the model's size, classes `class_<i>`.
      embedding_head: the head whose eval views `embed` averages over (default: the first head
        in name order, as the export's default).
    """

    max_frames = None
    max_pixels = None
    max_request_bytes = None

    def __init__(self, path, datasets=None, embedding_head=None):
        self.model, self.specs = load_source(checkpoint=path, datasets=datasets)
        self.head_names = tuple(self.specs)
        self._functions = {}
        self.embedding_head = embedding_head or self.head_names[0]
        if self.embedding_head not in self.specs:
            raise ValueError(
                f"embedding head {self.embedding_head!r} is not one of {list(self.head_names)}"
            )

    def _probability_function(self, head: str):
        """uint8 [T, H, W, 3] -> [1, C]: `eval_preprocess` and the view-averaged softmax of
        `head` as one traced function (one trace per head whatever the frames' shape; eager
        execution took ~60x the time per window)."""
        if head not in self._functions:
            config = self.specs[head].eval_config
            backbone = self.model.backbone

            def probabilities(frames):
                views = eval_preprocess(frames, config, backbone.pixel_mean, backbone.pixel_std)
                return multiview.view_probabilities(self.model, head, views[None])

            self._functions[head] = tf.function(
                probabilities, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)]
            )
        return self._functions[head]

    def _views(self, frames, head: str) -> tf.Tensor:
        """[V, T, c, c, 3] eval views of one video for `head`."""
        backbone = self.model.backbone
        config = self.specs[head].eval_config
        return eval_preprocess(tf.constant(frames), config, backbone.pixel_mean, backbone.pixel_std)

    def predict(self, frames: np.ndarray, head=None, top: int = 5) -> dict:
        if head is not None and head not in self.specs:
            raise ValueError(f"unknown head {head!r}; the model has {list(self.head_names)}")
        answers = {}
        for name in self.head_names if head is None else (head,):
            probabilities = self._probability_function(name)(tf.constant(frames, tf.uint8))
            ranked = client.rank_classes(probabilities, self.specs[name].class_names, top)
            answers[name] = client.top_classes(ranked, top)
        return answers

    def class_names(self, head: str, count: int | None = None) -> list:
        """The head's class names in index order (from datasets.json, else `class_<i>`)."""
        return list(self.specs[head].class_names)

    def probabilities(self, frames: np.ndarray, head=None) -> dict:
        """{head: float32 [C]}: every class's probability, averaged over the head's eval views."""
        if head is not None and head not in self.specs:
            raise ValueError(f"unknown head {head!r}; the model has {list(self.head_names)}")
        answers = {}
        for name in self.head_names if head is None else (head,):
            probabilities = self._probability_function(name)(tf.constant(frames, tf.uint8))
            answers[name] = np.asarray(probabilities, np.float32)[0]
        return answers

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """uint8 [T, H, W, 3] -> float32 [D]; uint8 [B, T, H, W, 3] -> [B, D] (L2-normalised)."""
        batch, single = _video_batch(frames)
        views = tf.stack([self._views(video, self.embedding_head) for video in batch])
        embeddings = np.asarray(multiview.view_embedding(self.model, views), dtype=np.float32)
        return embeddings[0] if single else embeddings


def make_predictor(model_path, datasets=None):
    """KerasPredictor for a `.keras` file, SavedModelPredictor for an export folder.

    Raises SourceError (one sentence naming the path) for anything else or an unreadable model.
    """
    model_path = str(model_path)
    if model_path.endswith(".keras"):
        try:
            return KerasPredictor(model_path, datasets)
        except SourceError:
            raise
        except (ValueError, TypeError) as error:  # Keras refused to deserialise the file
            raise SourceError(_unloadable(model_path, error)) from error
    elif tf.io.gfile.isdir(model_path):
        if datasets is not None:
            raise SourceError("--datasets goes with a .keras model (an export holds its own)")
        return SavedModelPredictor(model_path)
    elif tf.io.gfile.exists(model_path):
        raise SourceError(f"--model {model_path!r} is neither an export folder nor a .keras file")
    else:
        raise SourceError(f"--model {model_path!r} does not exist")


def _unloadable(path: str, error: BaseException) -> str:
    """One sentence for a `.keras` file Keras refuses to deserialise."""
    text = str(error).strip()
    if "safe_mode" in text or "unsafe" in text:
        kind = "a Lambda layer" if "Lambda" in text else "Python code"
        return (
            f"the model file {path!r} holds {kind}, which Keras' safe mode refuses to load; "
            "predict loads only models without code (rebuild the model without it)"
        )
    reason = text.splitlines()[0] if text else type(error).__name__
    return f"the model file {path!r} cannot be loaded: {reason}"
