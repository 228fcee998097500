"""Classify decoded videos with a SavedModel export or a `.keras` model, the way evaluation does.

Both predictors take uint8 frames [T, H, W, 3] and return `{head: [(index, class, probability)]}`
with the probabilities averaged over the eval views. `SavedModelPredictor` calls the export's
signatures (so it checks the export end to end); `KerasPredictor` runs `eval_preprocess` and the
Keras model eagerly.
"""

import json
import pathlib

import numpy as np
import tensorflow as tf

from cover_tf.data.preprocessing import eval_preprocess
from cover_tf.serving import signatures
from cover_tf.serving.exporter import METADATA_FILE, existing_versions
from cover_tf.serving.heads import load_source


def resolve_export(path) -> pathlib.Path:
    """A SavedModel folder: `path` itself, or the highest version under an export base."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = existing_versions(path)
    if not versions:
        raise FileNotFoundError(f"{str(path)!r} is neither a SavedModel nor an export base")
    return path / str(versions[-1])


def top_classes(probabilities, class_names, top: int) -> list[dict]:
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:top]
    return [
        {"index": int(i), "class": class_names[i], "probability": float(probabilities[i])}
        for i in order
    ]


class SavedModelPredictor:
    """Runs an export's signatures: `serving_default` for every head, `<head>` for one.

    Args:
      path: a SavedModel version folder or an export base (its highest version is used).
    """

    def __init__(self, path):
        self.path = resolve_export(path)
        self.model = tf.saved_model.load(str(self.path))
        metadata = self.path / METADATA_FILE
        self.metadata = json.loads(metadata.read_text()) if metadata.is_file() else {}
        names = set(self.model.signatures)
        self.head_names = tuple(
            sorted(
                name
                for name in names
                if name != signatures.DEFAULT_SIGNATURE and name + signatures.JPEG_SUFFIX in names
            )
        )

    @property
    def max_frames(self):
        return self.metadata.get("limits", {}).get("max_frames")

    def predict(self, frames: np.ndarray, head=None, top: int = 5) -> dict:
        """{head: top classes} for uint8 frames [T, H, W, 3] (InvalidArgumentError if refused)."""
        batch = tf.constant(np.asarray(frames, np.uint8)[None])
        if head is None:
            outputs = self.model.signatures[signatures.DEFAULT_SIGNATURE](frames=batch)
            per_head = {
                name: {key: outputs[f"{name}_{key}"] for key in signatures.OUTPUTS}
                for name in self.head_names
            }
        else:
            if head not in self.head_names:
                raise ValueError(f"unknown head {head!r}; the export has {list(self.head_names)}")
            per_head = {head: self.model.signatures[head](frames=batch)}
        answers = {}
        for name, outputs in per_head.items():
            probabilities = outputs["probabilities"].numpy()[0]
            indices = outputs["top_k_indices"].numpy()[0][:top]
            classes = outputs["top_k_classes"].numpy()[0][:top]
            answers[name] = [
                {"index": int(i), "class": c.decode(), "probability": float(probabilities[i])}
                for i, c in zip(indices, classes, strict=True)
            ]
        return answers


class KerasPredictor:
    """Runs a `.keras` CoVeR model on `eval_preprocess`'s views, eagerly.

    Args:
      path: the `.keras` file.
      datasets: optional datasets.json (class names, eval preprocessing); default: one centre
        view at the model's size, classes `class_<i>`.
    """

    max_frames = None

    def __init__(self, path, datasets=None):
        self.model, self.specs = load_source(checkpoint=path, datasets=datasets)
        self.head_names = tuple(self.specs)

    def predict(self, frames: np.ndarray, head=None, top: int = 5) -> dict:
        if head is not None and head not in self.specs:
            raise ValueError(f"unknown head {head!r}; the model has {list(self.head_names)}")
        backbone = self.model.backbone
        answers = {}
        for name in self.head_names if head is None else (head,):
            spec = self.specs[name]
            views = eval_preprocess(
                tf.constant(frames), spec.eval_config, backbone.pixel_mean, backbone.pixel_std
            )
            logits = tf.cast(self.model(views, training=False)[name], tf.float32)
            probabilities = tf.reduce_mean(tf.nn.softmax(logits, axis=-1), axis=0).numpy()
            answers[name] = top_classes(probabilities, spec.class_names, top)
        return answers


def make_predictor(model_path, datasets=None):
    """KerasPredictor for a `.keras` file, SavedModelPredictor for an export folder."""
    if str(model_path).endswith(".keras"):
        return KerasPredictor(model_path, datasets)
    elif pathlib.Path(model_path).is_dir():
        if datasets is not None:
            raise ValueError("--datasets goes with a .keras model (an export holds its own)")
        return SavedModelPredictor(model_path)
    else:
        raise ValueError(f"--model must be an export folder or a .keras file, got {model_path!r}")
