"""The export's self-check under each compute dtype, and an export served where cover_tf is absent.

`serve_without_cover_tf` is also the last stage of the precision matrix
(tests/training/test_precision_matrix.py).
"""

import json
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from cover_tf.models import build_cover_model
from cover_tf.serving import signatures
from cover_tf.serving.exporter import METADATA_FILE, SelfCheckTolerance, export_model, self_check
from cover_tf.serving.heads import load_source, write_workdir
from tests.serving.conftest import HEADS, LIMITS, TOP_K, eval_configs

# Runs in `python -I` from an empty folder: no user site, no PYTHON* variables, no current folder
# on sys.path; the finder placed first refuses cover_tf, however it is installed (an editable
# install reaches it through its own finder, not sys.path), so a load that needed it would fail.
SERVE_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class NoCoverTF(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "cover_tf":
                raise ModuleNotFoundError(f"{name} is blocked: serving must not need it")

    sys.meta_path.insert(0, NoCoverTF())
    try:
        import cover_tf  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("cover_tf is importable")
    import numpy as np
    import tensorflow as tf

    export, request, response = sys.argv[1:]
    frames = tf.constant(np.load(request)["frames"])
    jpegs = tf.stack(
        [tf.map_fn(tf.io.encode_jpeg, video, fn_output_signature=tf.string) for video in frames]
    )
    loaded = tf.saved_model.load(export)
    outputs, dtypes = {}, {}
    for name, function in sorted(loaded.signatures.items()):
        ((argument, spec),) = function.structured_input_signature[1].items()
        answer = function(**{argument: jpegs if spec.dtype == tf.string else frames})
        for key, value in answer.items():
            value = value.numpy()
            outputs[f"{name}/{key}"] = value.astype("S") if value.dtype == object else value
            dtypes[f"{name}/{key}"] = answer[key].dtype.name
    np.savez(response, **outputs)
    print(json.dumps({"dtypes": dtypes, "cover_tf": "cover_tf" in sys.modules}))
    """
)


def serve_without_cover_tf(export_path, frames: np.ndarray, tmp_path) -> tuple[dict, dict]:
    """Loads the SavedModel at `export_path` with `tf.saved_model.load` in a fresh `python -I`
    that cannot import cover_tf, and calls every signature on `frames` (uint8 [B, T, H, W, 3];
    JPEG-encoded there for the `jpeg_frames` inputs). Returns ({"<signature>/<output>": array},
    {"<signature>/<output>": dtype name})."""
    folder = pathlib.Path(tmp_path) / "isolated"
    folder.mkdir(exist_ok=True)
    np.savez(folder / "request.npz", frames=frames)
    result = subprocess.run(
        [sys.executable, "-I", "-c", SERVE_SCRIPT, str(export_path), "request.npz", "out.npz"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["cover_tf"] is False
    with np.load(folder / "out.npz") as outputs:
        return {key: outputs[key] for key in outputs.files}, report["dtypes"]


def check_served(outputs: dict, dtypes: dict, loaded, frames, tolerance, class_names: dict):
    """The isolated process's answers are the reloaded SavedModel's here (within the export's
    self-check tolerance: the two processes may run other kernels), with the documented dtypes;
    every top_k_classes names its indices with the export's class-name assets."""
    jpegs = tf.stack(
        [tf.map_fn(tf.io.encode_jpeg, video, fn_output_signature=tf.string) for video in frames]
    )
    assert {key.split("/")[0] for key in outputs} == set(loaded.signatures)
    for name, function in loaded.signatures.items():
        ((argument, spec),) = function.structured_input_signature[1].items()
        answer = function(**{argument: jpegs if spec.dtype == tf.string else tf.constant(frames)})
        for key, value in answer.items():
            got, expected = outputs[f"{name}/{key}"], value.numpy()
            assert dtypes[f"{name}/{key}"] == value.dtype.name, (name, key)
            if key.endswith("top_k_classes"):
                indices = outputs[f"{name}/{key[: -len('classes')]}indices"]
                head = name if key == "top_k_classes" else key[: -len("_top_k_classes")]
                head = head.removesuffix(signatures.JPEG_SUFFIX)
                names = np.asarray(class_names[head]).astype("S")[indices]
                np.testing.assert_array_equal(got, names)
            elif value.dtype.is_floating:
                assert value.dtype == tf.float32
                allowed = tolerance.allowed(key, expected)
                assert np.all(np.abs(got - expected) <= allowed), (name, key)


def sharp_model(dtype=None, seed: int = 0):
    """serving/conftest.py's tiny model under a dtype policy, with the demo's difference tubelets
    and non-zero temporal branch (`temporal_init="sinusoidal"`: with a zero `temporal_fc` the
    branch adds exact zeros, and eager and graph bfloat16 then agree bit for bit); heads
    redrawn at unit scale, so that probabilities are sharp and a wrong weight shows."""
    keras.utils.set_random_seed(seed)
    model = build_cover_model(
        HEADS,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        patch_size=8,
        num_frames=4,
        image_size=32,
        tubelet_size=2,
        temporal_init="sinusoidal",
        dtype=dtype,
    )
    rng = np.random.default_rng(seed)
    for head in model.heads.values():
        for weight in head.weights:
            weight.assign(rng.normal(0.0, 1.0, weight.shape).astype("float32"))
    return model


CLASS_NAMES = {head: [f"{head} {i}" for i in range(count)] for head, count in HEADS.items()}


@pytest.fixture(scope="module")
def bf16_export(tmp_path_factory):
    """(model, specs, summary) of the sharp model under mixed_bfloat16, through a workdir."""
    workdir = tmp_path_factory.mktemp("bf16_workdir")
    write_workdir(workdir, sharp_model("mixed_bfloat16"), CLASS_NAMES, eval_configs())
    model, specs = load_source(workdir=workdir)
    assert model.dtype_policy.name == "mixed_bfloat16"
    out = tmp_path_factory.mktemp("bf16_exports") / "cover"
    return model, specs, export_model(model, specs, out, top_k=TOP_K, limits=LIMITS)


def test_tolerance_follows_the_compute_dtype():
    tolerances = {
        policy: SelfCheckTolerance.for_model(sharp_model(policy))
        for policy in ("float32", "mixed_bfloat16", "mixed_float16")
    }
    assert tolerances["float32"] == SelfCheckTolerance("float32", 1e-4, 0.0)
    assert tolerances["mixed_bfloat16"] == SelfCheckTolerance("bfloat16", 1e-4, 4 * 2**-7)
    assert tolerances["mixed_float16"] == SelfCheckTolerance("float16", 1e-4, 4 * 2**-10)
    # float32: the absolute 1e-4 everywhere, as before.
    probabilities = np.array([[0.5, 0.5 - 1e-7, 1e-7], [1.0 - 2e-9, 1e-9, 1e-9]], np.float32)
    np.testing.assert_array_equal(
        tolerances["float32"].allowed("x/probabilities", probabilities), 1e-4
    )
    # bfloat16 probabilities: a near-tie may move by the log-odds bound, a near-certain row (and
    # a near-zero class) hardly beyond the float32 floor.
    allowed = tolerances["mixed_bfloat16"].allowed("x/probabilities", probabilities)
    logit_range = np.log(0.5) - np.log(1e-7)
    np.testing.assert_allclose(allowed[0, 0], 1e-4 + 0.25 * np.expm1(4 * 2**-7 * logit_range))
    assert allowed[0, 0] > 0.05 and allowed[1].max() < 1e-4 + 1e-6 and allowed[0, 2] < 1e-4 + 1e-6
    # Embeddings: relative to the row's largest entry.
    embedding = np.array([[0.6, -0.8, 0.0], [0.0, 0.0, 1.0]], np.float32)
    allowed = tolerances["mixed_float16"].allowed("x/embedding", embedding)
    np.testing.assert_allclose(allowed[0], 1e-4 + 4 * 2**-10 * 0.8)
    np.testing.assert_allclose(allowed[1], 1e-4 + 4 * 2**-10)


def test_bf16_export_passes_its_check_and_records_the_tolerance(bf16_export):
    model, specs, summary = bf16_export
    tolerance = {"compute_dtype": "bfloat16", "atol": 1e-4, "rtol": 4 * 2**-7}
    assert summary["self_check_tolerance"] == tolerance
    metadata = json.loads((pathlib.Path(summary["path"]) / METADATA_FILE).read_text())
    assert metadata["self_check"] == {
        "checked": True,
        **tolerance,
        "max_abs_diff": summary["self_check_max_abs_diff"],
    }


def test_a_wrong_bf16_export_fails_the_check(bf16_export):
    """The same SavedModel against a Keras model one weight away: the check must fail, and say
    which tolerance it applied."""
    model, specs, summary = bf16_export
    loaded = tf.saved_model.load(summary["path"])
    assets = pathlib.Path(summary["path"]) / "assets"
    tables = {
        head: signatures.class_name_table(str(assets / f"{head}.classes.txt")) for head in specs
    }
    listed = signatures.serving_signatures(model, specs, tables, LIMITS, TOP_K, "images")
    assert max(self_check(loaded, model, listed, LIMITS).values()) == pytest.approx(
        summary["self_check_max_abs_diff"]
    )
    gamma = model.backbone.final_norm.gamma
    original = gamma.numpy()
    noise = np.random.default_rng(0).normal(0.0, 0.1, original.shape).astype("float32")
    gamma.assign(original * (1.0 + noise))  # the final LayerNorm's scale off by 10% (rms)
    try:
        with pytest.raises(
            AssertionError,
            match=r"self-check failed: .* is allowed \(tolerance for bfloat16 compute: 0.0001 \+ 0.0312 \(4 eps\) relative\)",
        ):
            self_check(loaded, model, listed, LIMITS)
    finally:
        gamma.assign(original)


def test_bf16_export_serves_without_cover_tf(bf16_export, tmp_path):
    model, specs, summary = bf16_export
    frames = np.random.default_rng(3).integers(0, 256, (2, 5, 36, 44, 3), dtype=np.uint8)
    outputs, dtypes = serve_without_cover_tf(summary["path"], frames, tmp_path)
    loaded = tf.saved_model.load(summary["path"])
    tolerance = SelfCheckTolerance.for_model(model)
    check_served(outputs, dtypes, loaded, frames, tolerance, CLASS_NAMES)
    assert dtypes["embedding/embedding"] == "float32" and outputs["motion/logits"].shape == (2, 5)
