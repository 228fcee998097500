"""Export a CoVeR model as a SavedModel for TF Serving, in its versioned layout, and check it.

`export_model` builds one `keras.export.ExportArchive` holding every signature that
`cover_tf.serving.signatures.serving_signatures` lists (per head `<head>` and `<head>_jpeg`,
`serving_default` for every head, `embedding` and `embedding_jpeg`), writes it beside the
version folder under a name TF Serving ignores (`<out>/.staging-<N>-<pid>`), reloads and checks
it, then publishes it as `<out>/<N>/` (`cover_tf.serving.versions`: a rename on a local disk, a
copy with a completion marker on object stores), so a server polling `<out>` never loads a
failing version. Every path goes through tf.io.gfile (local, `gs://`, `ram://`). The self-check's
tolerance follows the model's compute dtype (`SelfCheckTolerance`); the export's metadata records
the one it used.
"""

import dataclasses
import json
import os
import time

import keras
import ml_dtypes
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

__all__ = [
    "METADATA_FILE",
    "SelfCheckTolerance",
    "existing_versions",
    "export_model",
    "next_version",
    "self_check",
]
FLOAT32_TOLERANCE = 1e-4
# A float16 / bfloat16 model's relative tolerance, in units of its compute dtype's epsilon.
REDUCED_PRECISION_EPSILONS = 4


@dataclasses.dataclass(frozen=True)
class SelfCheckTolerance:
    """How far an exported output may lie from the eager Keras model's, for a compute dtype.

    Element by element, |exported - Keras| <= atol + allowance, where the allowance scales with
    `rtol` and the size of what is compared:
      embedding (a unit vector)  rtol x the largest |entry| of its row;
      probabilities p            p (1 - p) (exp(rtol x R) - 1), R the row's logit range, read off
                                 the Keras answer as log max(p) - log min(p).
    A float32 model keeps the plain absolute check: atol 1e-4, rtol 0. A float16 or bfloat16
    model computes its features in that dtype, and the exported graph rounds at other places than
    eager Keras (other kernels, other fusions), so its features differ by a few epsilons of the
    dtype relative to their size: rtol = 4 eps (bfloat16 0.031, float16 0.0039; a trained
    bfloat16 demo model's embedding was off by up to 0.3 eps of its largest entry). The logits
    are a float32 map of those features, so their differences are off by about rtol x R, which
    moves the log-odds of class i by at most that much, and p_i by at most the bound above (exact
    for a log-odds change; a near-certain class moves little, a near-tie the most).

    Args:
      compute_dtype: the backbone's compute dtype, e.g. "bfloat16".
      atol: the absolute floor (float32's tolerance).
      rtol: the relative tolerance, 0 for float32.
    """

    compute_dtype: str
    atol: float
    rtol: float

    @classmethod
    def for_model(cls, model) -> "SelfCheckTolerance":
        dtype = keras.backend.standardize_dtype(model.backbone.compute_dtype)
        if dtype == "float32":
            return cls(dtype, FLOAT32_TOLERANCE, 0.0)
        if dtype not in ("float16", "bfloat16"):
            raise ValueError(
                f"no self-check tolerance for compute dtype {dtype!r}: float32, float16 or bfloat16"
            )
        epsilon = float(ml_dtypes.finfo(dtype).eps)
        return cls(dtype, FLOAT32_TOLERANCE, REDUCED_PRECISION_EPSILONS * epsilon)

    def allowed(self, key: str, expected: np.ndarray) -> np.ndarray:
        """The largest |difference| allowed at each element of `expected`, the Keras answer of
        the output `key` (`.../probabilities` `[B, C]`, `.../embedding` `[B, D]`)."""
        if self.rtol == 0.0:
            return np.full(expected.shape, self.atol)
        expected = expected.astype(np.float64)
        if key.endswith("probabilities"):
            tiny = np.finfo(np.float32).tiny
            logs = np.log(np.maximum(expected, tiny))
            logit_range = logs.max(axis=-1, keepdims=True) - logs.min(axis=-1, keepdims=True)
            allowance = expected * (1.0 - expected) * np.expm1(self.rtol * logit_range)
        else:
            allowance = self.rtol * np.abs(expected).max(axis=-1, keepdims=True)
        return np.broadcast_to(self.atol + allowance, expected.shape)

    def describe(self) -> str:
        if self.rtol == 0.0:
            return f"{self.compute_dtype} compute: {self.atol:g} absolute"
        return (
            f"{self.compute_dtype} compute: {self.atol:g} + {self.rtol:.3g} "
            f"({REDUCED_PRECISION_EPSILONS} eps) relative"
        )


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


def self_check(loaded, model, listed: list, limits, seed: int = 0, tolerance=None) -> dict:
    """Compares every signature of the reloaded SavedModel with its eager Keras reference.

    `loaded` is the reloaded SavedModel (`tf.saved_model.load`), `listed` the `Signature`s it
    was written from. Every signature runs on the same random videos (uint8, or JPEG-encoded for
    a string input); each float output its reference names is compared, and every
    `top_k_classes` must name its `top_k_indices`. Returns {"<signature>/<output>": max abs
    difference}; raises AssertionError when an output is further from its reference than
    `tolerance` allows (default: `SelfCheckTolerance.for_model(model)`; the message names it)
    or a name is wrong.
    """
    tolerance = tolerance or SelfCheckTolerance.for_model(model)
    videos = tf.constant(_check_inputs(model, limits, seed))
    jpegs = tf.stack(
        [tf.map_fn(tf.io.encode_jpeg, video, fn_output_signature=tf.string) for video in videos]
    )
    diffs, excess = {}, {}
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
            name, difference = f"{signature.name}/{key}", np.abs(got - expected)
            allowed = tolerance.allowed(key, expected)
            diffs[name] = float(difference.max())
            worst = np.unravel_index(np.argmax(difference / allowed), difference.shape)
            excess[name] = (float(difference[worst] / allowed[worst]), float(allowed[worst]))
        for prefix, class_names in signature.class_names.items():
            indices = outputs[prefix + "top_k_indices"].numpy()
            names = np.asarray(class_names)[indices]
            got = outputs[prefix + "top_k_classes"].numpy().astype(str)
            if not np.array_equal(names, got):
                raise AssertionError(
                    f"{signature.name}: {prefix}top_k_classes {got} do not name indices ({names})"
                )
    worst = max(excess, key=lambda name: excess[name][0])
    ratio, allowed = excess[worst]
    if ratio > 1.0:
        raise AssertionError(
            f"self-check failed: {worst} differs from the Keras model by {ratio * allowed:.3g} "
            f"where {allowed:.3g} is allowed (tolerance for {tolerance.describe()})"
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


def _metadata(
    model, specs: dict, limits, top_k: int, version: int, embedding_head, check: dict
) -> dict:
    return {
        "version": version,
        "top_k": top_k,
        "limits": dataclasses.asdict(limits),
        "self_check": check,
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
        export_seconds = time.perf_counter() - start
        loaded = tf.saved_model.load(staging)
        tolerance = SelfCheckTolerance.for_model(model)
        diffs = self_check(loaded, model, listed, limits, tolerance=tolerance) if check else {}
        described = describe_signatures(loaded)
        del loaded
        names = sorted(signature.name for signature in listed)
        if sorted(described) != names:
            raise AssertionError(f"exported signatures {sorted(described)}, expected {names}")
        checked = {
            "checked": check,
            **dataclasses.asdict(tolerance),
            "max_abs_diff": max(diffs.values()) if diffs else None,
        }
        tf.io.gfile.makedirs(join(staging, os.path.dirname(METADATA_FILE)))
        with tf.io.gfile.GFile(join(staging, METADATA_FILE), "w") as file:
            metadata = _metadata(model, specs, limits, top_k, version, embedding_head, checked)
            file.write(json.dumps(metadata, indent=2))
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
        "self_check_max_abs_diff": checked["max_abs_diff"],
        "self_check": diffs,
        "self_check_tolerance": {key: checked[key] for key in ("compute_dtype", "atol", "rtol")},
        "export_seconds": round(export_seconds, 2),
        "size_bytes": size,
    }
