"""Export a CoVeR model as a SavedModel for TF Serving, in its versioned layout, and check it.

`export_model` builds one `keras.export.ExportArchive` with, per head, a uint8-frames signature
`<head>` and a JPEG-frames signature `<head>_jpeg`, plus `serving_default` (uint8 frames, every
head), writes it to `<out>/<version>/` (written beside it under a name TF Serving ignores, checked,
then renamed into place, so a server polling `<out>` never sees a half-written or failing version)
and returns a JSON-able summary.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from cover_tf.data.preprocessing import eval_preprocess
from cover_tf.serving import signatures
from cover_tf.serving.heads import HeadSpec

METADATA_FILE = pathlib.Path("assets.extra") / "cover_tf_export.json"
SELF_CHECK_TOLERANCE = 1e-4


def existing_versions(base) -> list[int]:
    """The numeric version folders under an export base, sorted (TF Serving's layout)."""
    base = pathlib.Path(base)
    if not base.is_dir():
        return []
    return sorted(int(child.name) for child in base.iterdir() if child.name.isdigit())


def next_version(base) -> int:
    """1 + the highest existing version under `base` (1 for a new base)."""
    versions = existing_versions(base)
    return versions[-1] + 1 if versions else 1


def signature_names(specs: dict) -> list[str]:
    names = [signatures.DEFAULT_SIGNATURE]
    for head in specs:
        names += [head, head + signatures.JPEG_SUFFIX]
    if len(set(names)) != len(names):
        raise ValueError(f"head names {list(specs)} give colliding signature names {names}")
    return names


def _track_variables_once(archive) -> None:
    """Workaround for keras-team/keras#23553 (open in Keras 3.15): `track(model)` lists the
    `keras.Variable` wrappers while the endpoints capture the `tf.Variable`s inside them, so every
    weight is saved twice (2x the files, 2x the memory in TF Serving). As the proposed fix
    (keras-team/keras#23563) does, list the inner `tf.Variable`s, which TF then saves once.
    """
    collections = getattr(archive, "_tf_trackable", None)
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        tracked = getattr(collections, name, None)
        if tracked is None:
            continue
        inner = [getattr(variable, "_value", variable) for variable in tracked]
        if all(isinstance(variable, tf.Variable) for variable in inner):
            setattr(collections, name, inner)


def build_archive(model, specs: dict, tables: dict, limits, top_k: int):
    """An ExportArchive tracking the model and the class-name tables, one endpoint per signature."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    _track_variables_once(archive)
    for table in tables.values():
        archive.track(table)
    archive.add_endpoint(
        signatures.DEFAULT_SIGNATURE,
        signatures.make_all_heads_fn(model, specs, tables, limits, top_k),
        input_signature=[signatures.frames_spec()],
    )
    for head, spec in specs.items():
        for jpeg, input_spec in ((False, signatures.frames_spec()), (True, signatures.jpeg_spec())):
            archive.add_endpoint(
                head + (signatures.JPEG_SUFFIX if jpeg else ""),
                signatures.make_head_fn(model, spec, tables[head], limits, top_k, jpeg),
                input_signature=[input_spec],
            )
    return archive


def _check_inputs(model, limits, seed: int) -> np.ndarray:
    """Random uint8 videos off the model's configured T and size (exercising the resizes)."""
    backbone = model.backbone
    frames = min(limits.max_frames, backbone.num_frames + 3)
    height = backbone.image_size + 6
    width = (backbone.image_size * 3) // 2
    scale = min(1.0, (limits.max_pixels / (height * width)) ** 0.5)
    height, width = max(1, int(height * scale)), max(1, int(width * scale))
    batch = min(2, limits.max_batch)
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, frames, height, width, 3), dtype=np.uint8)


def reference_probabilities(model, spec: HeadSpec, videos) -> np.ndarray:
    """Evaluation's answer, eagerly: eval_preprocess per video, the Keras model, mean softmax."""
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std
    probabilities = []
    for video in videos:
        views = eval_preprocess(video, spec.eval_config, mean, std)
        logits = tf.cast(model(views, training=False)[spec.name], tf.float32)
        probabilities.append(tf.reduce_mean(tf.nn.softmax(logits, axis=-1), axis=0).numpy())
    return np.stack(probabilities)


def self_check(loaded, model, specs: dict, limits, seed: int = 0) -> dict:
    """Reloads the SavedModel and compares every head's probabilities with the eager Keras path.

    `loaded` is the reloaded SavedModel (`tf.saved_model.load`). Checks the uint8, the JPEG and the all-heads signatures on the same random input, and that
    `top_k_classes` names `top_k_indices`. Returns {signature: max abs difference}; raises
    AssertionError when one exceeds SELF_CHECK_TOLERANCE or a class name is wrong.
    """
    videos = _check_inputs(model, limits, seed)
    jpegs = tf.stack(
        [
            tf.map_fn(tf.io.encode_jpeg, video, fn_output_signature=tf.string)
            for video in tf.constant(videos)
        ]
    )
    all_heads = loaded.signatures[signatures.DEFAULT_SIGNATURE](frames=tf.constant(videos))
    diffs = {}
    for head, spec in specs.items():
        expected = reference_probabilities(model, spec, videos)
        expected_jpeg = reference_probabilities(model, spec, jpegs)
        answers = {
            head: (loaded.signatures[head](frames=tf.constant(videos)), expected),
            head + signatures.JPEG_SUFFIX: (
                loaded.signatures[head + signatures.JPEG_SUFFIX](jpeg_frames=jpegs),
                expected_jpeg,
            ),
        }
        default = {
            key[len(head) + 1 :]: all_heads[key] for key in all_heads if key.startswith(head + "_")
        }
        answers[f"{signatures.DEFAULT_SIGNATURE}[{head}]"] = (default, expected)
        for name, (outputs, reference) in answers.items():
            diffs[name] = float(np.max(np.abs(outputs["probabilities"].numpy() - reference)))
            names = np.asarray(spec.class_names)[outputs["top_k_indices"].numpy()]
            got = outputs["top_k_classes"].numpy().astype(str)
            if not np.array_equal(names, got):
                raise AssertionError(f"{name}: top_k_classes {got} do not name indices ({names})")
    worst = max(diffs, key=diffs.get)
    if diffs[worst] > SELF_CHECK_TOLERANCE:
        raise AssertionError(
            f"self-check failed: {worst} differs from the Keras model by {diffs[worst]:.3g} "
            f"(> {SELF_CHECK_TOLERANCE})"
        )
    return diffs


def describe_signatures(loaded) -> dict:
    """{signature: {"inputs": {name: [dtype, shape]}, "outputs": {...}}} of a loaded SavedModel."""
    described = {}
    for name, function in loaded.signatures.items():
        inputs = function.structured_input_signature[1]
        described[name] = {
            "inputs": {
                key: [spec.dtype.name, spec.shape.as_list()] for key, spec in inputs.items()
            },
            "outputs": {
                key: [spec.dtype.name, spec.shape.as_list()]
                for key, spec in sorted(function.structured_outputs.items())
            },
        }
    return described


def _metadata(specs: dict, limits, top_k: int, version: int) -> dict:
    return {
        "version": version,
        "top_k": top_k,
        "limits": dataclasses.asdict(limits),
        "heads": {
            head: {
                "num_classes": len(spec.class_names),
                "num_views": spec.num_views,
                "eval": dataclasses.asdict(spec.eval_config),
            }
            for head, spec in specs.items()
        },
    }


def export_model(
    model, specs: dict, out, version=None, top_k: int = 5, limits=None, check: bool = True
) -> dict:
    """Writes `<out>/<version>/` (version: 1 + the highest existing by default); returns a summary.

    Args:
      model: a CoVeRModel.
      specs: {head: HeadSpec} (see `cover_tf.serving.heads`).
      out: the export base, TF Serving's `base_path` (e.g. `exports/cover`).
      version: an unused version number, or None for the next one.
      top_k: k of the top_k outputs (capped at each head's class count).
      limits: ServingLimits (default: its defaults).
      check: reload and compare with the Keras model before publishing the version.
    """
    limits = limits or signatures.ServingLimits()
    limits.validate()
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    names = signature_names(specs)
    out = pathlib.Path(out)
    version = next_version(out) if version is None else int(version)
    if version < 1 or (out / str(version)).exists():
        raise ValueError(f"version {version} is taken or not positive under {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".staging-{version}-{os.getpid()}"
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as asset_dir:
            tables = {}
            for head, spec in specs.items():
                asset = pathlib.Path(asset_dir) / f"{head}.classes.txt"
                asset.write_text("\n".join(spec.class_names) + "\n")
                tables[head] = signatures.class_name_table(str(asset))
            archive = build_archive(model, specs, tables, limits, top_k)
            archive.write_out(str(staging), verbose=False)
        metadata = staging / METADATA_FILE
        metadata.parent.mkdir(exist_ok=True)
        metadata.write_text(json.dumps(_metadata(specs, limits, top_k, version), indent=2))
        export_seconds = time.perf_counter() - start
        loaded = tf.saved_model.load(str(staging))
        diffs = self_check(loaded, model, specs, limits) if check else {}
        described = describe_signatures(loaded)
        del loaded
        if sorted(described) != sorted(names):
            raise AssertionError(f"exported signatures {sorted(described)}, expected {names}")
        os.replace(staging, out / str(version))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    path = out / str(version)
    size = sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    return {
        "path": str(path),
        "version": version,
        "signatures": described,
        "self_check_max_abs_diff": max(diffs.values()) if diffs else None,
        "self_check": diffs,
        "export_seconds": round(export_seconds, 2),
        "size_bytes": size,
    }
