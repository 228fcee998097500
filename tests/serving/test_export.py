"""The SavedModel export: layout, signatures, agreement with the Keras model, input checks."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from cover_tf import export as export_cli
from cover_tf.models import build_cover_model
from cover_tf.serving.exporter import METADATA_FILE, export_model, next_version
from cover_tf.serving.heads import head_specs
from cover_tf.serving.predictors import KerasPredictor, SavedModelPredictor
from cover_tf.serving.signatures import reference_embedding, reference_probabilities
from tests.serving.conftest import HEADS, LIMITS, TOP_K

SIGNATURES = [
    "embedding",
    "embedding_jpeg",
    "images",
    "images_jpeg",
    "motion",
    "motion_jpeg",
    "serving_default",
]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def saved_model_cli() -> str:
    return str(pathlib.Path(sys.executable).parent / "saved_model_cli")


def test_export_layout_signatures_and_self_check(export, source):
    path = pathlib.Path(export["path"])
    assert export["version"] == 1 and path == pathlib.Path(export["base"]) / "1"
    assert (path / "saved_model.pb").is_file()
    assert sorted(export["signatures"]) == SIGNATURES
    assert export["self_check_max_abs_diff"] < 1e-4
    assert sorted(export["self_check"]) == [
        "embedding/embedding",
        "embedding_jpeg/embedding",
        "images/probabilities",
        "images_jpeg/probabilities",
        "motion/probabilities",
        "motion_jpeg/probabilities",
        "serving_default/images_probabilities",
        "serving_default/motion_probabilities",
    ]
    motion = export["signatures"]["motion"]
    assert motion["inputs"] == {"frames": ["uint8", [None, None, None, None, 3]]}
    assert motion["outputs"] == {
        "logits": ["float32", [None, 5]],
        "probabilities": ["float32", [None, 5]],
        "top_k_classes": ["string", [None, TOP_K]],
        "top_k_indices": ["int32", [None, TOP_K]],
    }
    assert export["signatures"]["images_jpeg"]["inputs"] == {
        "jpeg_frames": ["string", [None, None]]
    }
    default_outputs = export["signatures"]["serving_default"]["outputs"]
    assert sorted(default_outputs) == sorted(
        f"{head}_{key}"
        for head in HEADS
        for key in ("logits", "probabilities", "top_k_classes", "top_k_indices")
    )
    # Class names travel as assets; the metadata names the limits and views.
    assert (path / "assets" / "motion.classes.txt").read_text().splitlines()[0] == "motion class 0"
    metadata = json.loads((path / METADATA_FILE).read_text())
    assert metadata["limits"]["max_frames"] == LIMITS.max_frames
    assert metadata["heads"]["motion"]["num_views"] == 2
    assert metadata["heads"]["images"]["num_views"] == 3
    # The embedding uses the first head's views by default ("images": 3 crops).
    assert metadata["embedding"] == {
        "head": "images",
        "dim": 32,
        "num_views": 3,
        "normalization": "l2",
    }
    assert export["signatures"]["embedding"] == {
        "inputs": {"frames": ["uint8", [None, None, None, None, 3]]},
        "outputs": {"embedding": ["float32", [None, 32]]},
    }
    assert export["signatures"]["embedding_jpeg"]["inputs"] == {
        "jpeg_frames": ["string", [None, None]]
    }
    assert not [child for child in pathlib.Path(export["base"]).iterdir() if child.name != "1"]
    # Every weight is stored once (keras-team/keras#23553 would store each twice).
    shapes = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    stored = sum(
        int(np.prod(shape))
        for key, shape in shapes.get_variable_to_shape_map().items()
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH"
    )
    assert stored == source[0].count_params()


def test_signatures_match_keras_on_a_real_clip(loaded, source, real_clip):
    model, specs = source
    frames = real_clip[1][None]  # [1, 8, 32, 74, 3]
    jpegs = tf.map_fn(tf.io.encode_jpeg, tf.constant(real_clip[1]), fn_output_signature=tf.string)
    all_heads = loaded.signatures["serving_default"](frames=tf.constant(frames))
    for head, spec in specs.items():
        expected = reference_probabilities(model, spec, frames)
        outputs = loaded.signatures[head](frames=tf.constant(frames))
        np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)
        np.testing.assert_allclose(all_heads[f"{head}_probabilities"].numpy(), expected, atol=1e-5)
        assert expected.max() > 0.3  # sharp heads: a wrong view or class order would show
        jpeg_outputs = loaded.signatures[head + "_jpeg"](jpeg_frames=jpegs[None])
        np.testing.assert_allclose(
            jpeg_outputs["probabilities"].numpy(),
            reference_probabilities(model, spec, jpegs[None]),
            atol=1e-5,
        )
        order = np.argsort(-expected[0], kind="stable")[:TOP_K]
        np.testing.assert_array_equal(outputs["top_k_indices"].numpy()[0], order)
        names = [name.decode() for name in outputs["top_k_classes"].numpy()[0]]
        assert names == [spec.class_names[i] for i in order]
        logits = outputs["logits"].numpy()
        assert logits.shape == (1, HEADS[head]) and np.argmax(logits) in order


def test_embedding_signatures_on_real_clips(export, loaded, source, workdir, real_clip, webm_clip):
    model, specs = source
    videos = np.stack([real_clip[1], webm_clip[1][: len(real_clip[1])]])  # [2, 8, 32, 74, 3]
    embedding = loaded.signatures["embedding"](frames=tf.constant(videos))["embedding"].numpy()
    assert embedding.shape == (2, 32) and embedding.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        embedding, reference_embedding(model, specs["images"], videos), atol=1e-5
    )
    # A video's embedding does not depend on the batch it came in.
    alone = loaded.signatures["embedding"](frames=tf.constant(videos[1:]))["embedding"].numpy()
    np.testing.assert_allclose(alone[0], embedding[1], atol=1e-5)
    jpegs = tf.stack(
        [tf.map_fn(tf.io.encode_jpeg, video, fn_output_signature=tf.string) for video in videos]
    )
    from_jpeg = loaded.signatures["embedding_jpeg"](jpeg_frames=jpegs)["embedding"].numpy()
    np.testing.assert_allclose(
        from_jpeg, reference_embedding(model, specs["images"], jpegs), atol=1e-5
    )
    # The views matter: the embedding is not the motion head's (2 clips x 1 crop) embedding.
    assert np.abs(reference_embedding(model, specs["motion"], videos) - embedding).max() > 1e-3
    # Both predictors' `embed`: one video -> [D], a batch -> [B, D], the same numbers.
    exported = SavedModelPredictor(export["base"])
    direct = KerasPredictor(workdir / "model.keras", workdir / "datasets.json")
    assert exported.head_names == direct.head_names == ("images", "motion")
    np.testing.assert_allclose(exported.embed(videos[0]), embedding[0], atol=1e-5)
    np.testing.assert_allclose(direct.embed(videos), embedding, atol=1e-5)
    assert direct.embed(videos[0]).shape == (32,)
    with pytest.raises(ValueError, match="uint8"):
        direct.embed(videos.astype(np.float32))


def test_embedding_head_option_chooses_the_views(tmp_path, source, real_clip):
    model, specs = source
    summary = export_model(
        model, specs, tmp_path / "cover", limits=LIMITS, embedding_head="motion", check=False
    )
    metadata = json.loads((pathlib.Path(summary["path"]) / METADATA_FILE).read_text())
    assert metadata["embedding"]["head"] == "motion" and metadata["embedding"]["num_views"] == 2
    got = SavedModelPredictor(summary["path"]).embed(real_clip[1])
    expected = reference_embedding(model, specs["motion"], real_clip[1][None])[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match="embedding head 'nope'"):
        export_model(model, specs, tmp_path / "other", embedding_head="nope")


def _jpeg(height=16, width=16) -> bytes:
    return tf.io.encode_jpeg(tf.zeros([height, width, 3], tf.uint8)).numpy()


MALFORMED = {
    "wrong dtype": ("motion", "frames", np.zeros([1, 4, 16, 16, 3], np.float32), "uint8"),
    "wrong rank": ("motion", "frames", np.zeros([4, 16, 16, 3], np.uint8), "not compatible"),
    "wrong channels": ("images", "frames", np.zeros([1, 1, 8, 8, 4], np.uint8), "not compatible"),
    "too many frames": ("motion", "frames", np.zeros([1, 33, 8, 8, 3], np.uint8), "max_frames=32"),
    "too many pixels": ("motion", "frames", np.zeros([1, 2, 101, 100, 3], np.uint8), "max_pixels"),
    "batch too large": ("images", "frames", np.zeros([5, 1, 8, 8, 3], np.uint8), "max_batch=4"),
    "no frames": ("motion", "frames", np.zeros([1, 0, 8, 8, 3], np.uint8), "at least one frame"),
    "garbage jpeg": ("motion_jpeg", "jpeg_frames", np.array([[b"garbage"]]), "Invalid JPEG"),
    "truncated jpeg": ("images_jpeg", "jpeg_frames", np.array([[_jpeg()[:200]]]), "JPEG"),
    "jpeg too large": ("motion_jpeg", "jpeg_frames", np.array([[_jpeg(128, 80)]]), "max_pixels"),
    "jpeg sizes differ": (
        "motion_jpeg",
        "jpeg_frames",
        np.array([[_jpeg(), _jpeg(8, 16)]]),
        "same height and width",
    ),
    "jpeg too many frames": ("motion_jpeg", "jpeg_frames", np.array([[b"x"] * 33]), "max_frames"),
    "embedding too many frames": (
        "embedding",
        "frames",
        np.zeros([1, 33, 8, 8, 3], np.uint8),
        "max_frames=32",
    ),
    "embedding batch too large": (
        "embedding",
        "frames",
        np.zeros([5, 1, 8, 8, 3], np.uint8),
        "max_batch=4",
    ),
    "embedding garbage jpeg": (
        "embedding_jpeg",
        "jpeg_frames",
        np.array([[b"garbage"]]),
        "Invalid JPEG",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_are_invalid_argument(loaded, case):
    signature, name, value, message = MALFORMED[case]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures[signature](**{name: tf.constant(value)})


def test_next_version_and_taken_version(tmp_path, source):
    assert next_version(tmp_path / "absent") == 1
    for name in ("1", "3", "notes", ".staging-9-1"):
        (tmp_path / name).mkdir()
    assert next_version(tmp_path) == 4
    model, specs = source
    with pytest.raises(ValueError, match="version 3 is taken"):
        export_model(model, specs, tmp_path, version=3)


def test_datasets_json_must_match_the_heads(source):
    model, specs = source
    with pytest.raises(ValueError, match=r"missing \['motion'\], unknown \['other'\]"):
        head_specs(model, {"images": {}, "other": {}})
    with pytest.raises(ValueError, match="has 5 classes but 2 class names"):
        head_specs(model, {"images": {}, "motion": {"class_names": ["a", "b"]}})
    with pytest.raises(ValueError, match="unknown eval fields"):
        head_specs(model, {"images": {"eval": {"crop": 3}}, "motion": {}})


def test_second_export_from_checkpoint_is_version_2(export, tmp_path, capsys):
    # A one-head, one-layer checkpoint keeps this second real export (CLI, self-check) short.
    keras.utils.set_random_seed(1)
    model = build_cover_model(
        {"clips": 4},
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        patch_size=8,
        num_frames=2,
        image_size=16,
    )
    model.save(tmp_path / "clips.keras")
    base = tmp_path / "cover"
    shutil.copytree(export["path"], base / "1")
    code = export_cli.main(
        ["--checkpoint", str(tmp_path / "clips.keras"), "--out", str(base), "--max-batch", "2"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["version"] == 2 and summary["path"] == str(base / "2")
    assert sorted(summary["signatures"]) == [
        "clips",
        "clips_jpeg",
        "embedding",
        "embedding_jpeg",
        "serving_default",
    ]
    assert summary["self_check_max_abs_diff"] < 1e-4
    # Without datasets.json: classes class_<i>, top-4 (k capped at the class count).
    loaded = tf.saved_model.load(str(base / "2"))
    outputs = loaded.signatures["clips"](frames=tf.zeros([2, 3, 20, 24, 3], tf.uint8))
    assert outputs["top_k_classes"].shape == (2, 4)
    assert sorted(outputs["top_k_classes"].numpy()[0]) == [
        b"class_0",
        b"class_1",
        b"class_2",
        b"class_3",
    ]
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_batch=2"):
        loaded.signatures["clips"](frames=tf.zeros([3, 1, 16, 16, 3], tf.uint8))
    assert sorted(path.name for path in base.iterdir()) == ["1", "2"]


def test_saved_model_cli_show_lists_every_signature(export):
    result = subprocess.run(
        [saved_model_cli(), "show", "--dir", export["path"], "--all"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        check=True,
    )
    listed = sorted(
        line.split("'")[1] for line in result.stdout.splitlines() if "signature_def['" in line
    )
    assert [name for name in listed if not name.startswith("__")] == SIGNATURES
    assert "dtype: DT_UINT8" in result.stdout and "shape: (-1, -1, -1, -1, 3)" in result.stdout
    assert "dtype: DT_STRING" in result.stdout and "shape: (-1, 3)" in result.stdout


def test_saved_model_cli_run_on_one_head(export, tmp_path):
    result = subprocess.run(
        [
            saved_model_cli(),
            "run",
            "--dir",
            export["path"],
            "--tag_set",
            "serve",
            "--signature_def",
            "motion",
            "--input_exprs",
            # TF 2.20's saved_model_cli takes Python literals only; the uint8 comes from the spec.
            "frames=" + str(np.full((1, 6, 12, 10, 3), 128).tolist()),
            "--outdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        check=True,
    )
    probabilities = np.load(tmp_path / "probabilities.npy")
    assert probabilities.shape == (1, 5)
    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-5)
    classes = np.load(tmp_path / "top_k_classes.npy", allow_pickle=True)  # written just now
    assert classes[0, 0].startswith(b"motion class")
    assert "probabilities.npy" in result.stdout + result.stderr


def test_exported_graph_needs_no_xla(export, tmp_path):
    """TF Serving runs XLA-compiled functions on CPU only with --xla_cpu_compilation_enabled:
    the export traces the model's plain-op path (`portable_graph`). The check itself can fail:
    the same bfloat16 LayerNorm traced outside `portable_graph` is an XLA function (where the
    XLA kernel works on this CPU: it is tried once per process)."""
    from cover_tf.layers import TokenLayerNorm, backend_ops
    from cover_tf.serving.exporter import xla_functions

    assert xla_functions(export["path"]) == []
    if not backend_ops._kernel_works("LayerNorm", "bfloat16"):
        pytest.skip("the XLA LayerNorm kernel does not run on this CPU: nothing to tell apart")
    norm = TokenLayerNorm(dtype="mixed_bfloat16")
    norm.build((None, 8))
    module = tf.Module()
    module.norm = norm
    spec = tf.TensorSpec([None, 8], tf.bfloat16)
    module.call = tf.function(lambda x: norm(x), input_signature=[spec])
    tf.saved_model.save(module, str(tmp_path / "xla"))
    assert xla_functions(tmp_path / "xla")
