"""Export a CoVeR model as a SavedModel for TF Serving, in its versioned layout, and check it.

`export_model` builds one `keras.export.ExportArchive` holding every signature that
`cover_tf.serving.signatures.serving_signatures` lists (per head `<head>` and `<head>_jpeg`,
`serving_default` for every head, `embedding` and `embedding_jpeg`), writes it beside the
version folder under a name TF Serving ignores (`<out>/.staging-<N>-<pid>`), reloads and checks
it, then publishes it as `<out>/<N>/` (`cover_tf.serving.versions`: a rename on a local disk, a
copy with a completion marker on object stores), so a server polling `<out>` never loads a
failing version. Every path goes through tf.io.gfile (local, `gs://`, `ram://`).
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from cover_tf.layers.backend_ops import portable_graph
from cover_tf.serving import signatures
from cover_tf.serving.versions import (
    METADATA_FILE,
    existing_versions,
    next_version,
    publish,
    remove_tree,
    size_bytes,
)
from cover_tf.workdir import join

__all__ = ["METADATA_FILE", "existing_versions", "export_model", "next_version", "self_check"]
SELF_CHECK_TOLERANCE = 1e-4


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


def build_archive(model, listed: list, tables: dict):
    """An ExportArchive tracking the model and the class-name tables, one endpoint per signature."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    _track_variables_once(archive)
    for table in tables.values():
        archive.track(table)
    for signature in listed:
        archive.add_endpoint(
            signature.name, signature.function, input_signature=[signature.input_spec]
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
    if batch * frames * height * width * 3 > limits.max_request_bytes:  # a tiny byte budget
        batch = 1
        frames = max(1, min(frames, limits.max_request_bytes // (height * width * 3)))
        scale = min(1.0, (limits.max_request_bytes / (frames * height * width * 3)) ** 0.5)
        height, width = max(1, int(height * scale)), max(1, int(width * scale))
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, frames, height, width, 3), dtype=np.uint8)


def self_check(loaded, model, listed: list, limits, seed: int = 0) -> dict:
    """Compares every signature of the reloaded SavedModel with its eager Keras reference.

    `loaded` is the reloaded SavedModel (`tf.saved_model.load`), `listed` the `Signature`s it
    was written from. Every signature runs on the same random videos (uint8, or JPEG-encoded for
    a string input); each float output its reference names is compared, and every
    `top_k_classes` must name its `top_k_indices`. Returns {"<signature>/<output>": max abs
    difference}; raises AssertionError when one exceeds SELF_CHECK_TOLERANCE or a name is wrong.
    """
    videos = tf.constant(_check_inputs(model, limits, seed))
    jpegs = tf.stack(
        [tf.map_fn(tf.io.encode_jpeg, video, fn_output_signature=tf.string) for video in videos]
    )
    diffs = {}
    for signature in listed:
        batch = jpegs if signature.input_spec.dtype == tf.string else videos
        outputs = loaded.signatures[signature.name](**{signature.input_spec.name: batch})
        for key, expected in signature.reference(batch).items():
            got = outputs[key].numpy()
            if got.shape != expected.shape:
                raise AssertionError(
                    f"{signature.name}: {key} has shape {got.shape}, "
                    f"the Keras model's {expected.shape}"
                )
            diffs[f"{signature.name}/{key}"] = float(np.max(np.abs(got - expected)))
        for prefix, class_names in signature.class_names.items():
            indices = outputs[prefix + "top_k_indices"].numpy()
            names = np.asarray(class_names)[indices]
            got = outputs[prefix + "top_k_classes"].numpy().astype(str)
            if not np.array_equal(names, got):
                raise AssertionError(
                    f"{signature.name}: {prefix}top_k_classes {got} do not name indices ({names})"
                )
    worst = max(diffs, key=diffs.get)
    if diffs[worst] > SELF_CHECK_TOLERANCE:
        raise AssertionError(
            f"self-check failed: {worst} differs from the Keras model by {diffs[worst]:.3g} "
            f"(> {SELF_CHECK_TOLERANCE})"
        )
    return diffs


XLA_OPS = ("XlaLaunch", "_XlaCompile", "_XlaRun", "XlaCallModule")


def xla_functions(saved_model_dir) -> list:
    """Names of the functions of a SavedModel that need XLA to run: marked must-compile, or
    calling XLA's launch ops."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(join(str(saved_model_dir), "saved_model.pb"), "rb") as file:
        proto.ParseFromString(file.read())
    found = []
    for meta_graph in proto.meta_graphs:
        for function in meta_graph.graph_def.library.function:
            attr = function.attr.get("_XlaMustCompile")
            ops_used = {node.op for node in function.node_def}
            if (attr is not None and attr.b) or ops_used & set(XLA_OPS):
                found.append(function.signature.name)
    return found


def check_portable(saved_model_dir) -> None:
    """AssertionError naming the functions of the SavedModel that need XLA (TF Serving runs
    them on CPU only with `--xla_cpu_compilation_enabled`)."""
    found = xla_functions(saved_model_dir)
    if found:
        raise AssertionError(f"the SavedModel holds XLA-compiled functions: {found[:5]}")


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


def _metadata(model, specs: dict, limits, top_k: int, version: int, embedding_head) -> dict:
    return {
        "version": version,
        "top_k": top_k,
        "limits": dataclasses.asdict(limits),
        "embedding": {
            "head": embedding_head,
            "dim": model.backbone.hidden_size,
            "num_views": specs[embedding_head].num_views,
            "normalization": "l2",
        },
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
    model,
    specs: dict,
    out,
    version=None,
    top_k: int = 5,
    limits=None,
    check: bool = True,
    embedding_head: str | None = None,
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
      embedding_head: the head whose eval views the `embedding` signatures average over
        (default: the first head in name order).
    """
    limits = limits or signatures.ServingLimits()
    limits.validate()
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    embedding_head = embedding_head or next(iter(specs))
    if embedding_head not in specs:
        raise ValueError(f"embedding head {embedding_head!r} is not one of the heads {list(specs)}")
    out = str(out).rstrip("/")
    version = next_version(out) if version is None else int(version)
    target = join(out, str(version))
    if version < 1 or tf.io.gfile.exists(target):
        raise ValueError(f"version {version} is taken or not positive under {out!r}")
    tf.io.gfile.makedirs(out)
    staging = join(out, f".staging-{version}-{os.getpid()}")
    start = time.perf_counter()
    try:
        tables = {}
        for head, spec in specs.items():
            # Beside the SavedModel, which copies them into its assets/ folder.
            asset = join(staging + "-assets", f"{head}.classes.txt")
            tf.io.gfile.makedirs(staging + "-assets")
            with tf.io.gfile.GFile(asset, "w") as file:
                file.write("\n".join(spec.class_names) + "\n")
            tables[head] = signatures.class_name_table(asset)
        listed = signatures.serving_signatures(model, specs, tables, limits, top_k, embedding_head)
        with portable_graph():  # no XLA-compiled kernels: TF Serving runs them only on request
            build_archive(model, listed, tables).write_out(staging, verbose=False)
        check_portable(staging)
        tf.io.gfile.makedirs(join(staging, os.path.dirname(METADATA_FILE)))
        with tf.io.gfile.GFile(join(staging, METADATA_FILE), "w") as file:
            file.write(
                json.dumps(
                    _metadata(model, specs, limits, top_k, version, embedding_head), indent=2
                )
            )
        export_seconds = time.perf_counter() - start
        loaded = tf.saved_model.load(staging)
        diffs = self_check(loaded, model, listed, limits) if check else {}
        described = describe_signatures(loaded)
        del loaded
        names = sorted(signature.name for signature in listed)
        if sorted(described) != names:
            raise AssertionError(f"exported signatures {sorted(described)}, expected {names}")
        publish(staging, target)
    finally:
        for leftover in (staging, staging + "-assets"):
            if tf.io.gfile.exists(leftover):
                remove_tree(leftover)
    path, size = target, size_bytes(target)
    return {
        "path": str(path),
        "version": version,
        "signatures": described,
        "self_check_max_abs_diff": max(diffs.values()) if diffs else None,
        "self_check": diffs,
        "export_seconds": round(export_seconds, 2),
        "size_bytes": size,
    }
