"""Serving limits from a memory budget: the derivation, the in-graph refusal, the export CLI."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from cover_tf import export as export_cli
from cover_tf.serving import limits
from cover_tf.serving.exporter import METADATA_FILE
from tests.serving.conftest import LIMITS


def test_default_budget_refuses_what_exhausted_an_8_gib_server():
    default = limits.ServingLimits()
    assert default.memory_budget_bytes == 8 * limits.GIB
    # One 256-frame 1080p video took 4.3 GB and two 7.4 GB (issue 16): refused now; 256 frames
    # at 720p pass.
    video = 256 * 1080 * 1920 * 3
    assert 256 * 720 * 1280 * 3 <= default.max_request_bytes < video
    # ...and the old worst case (8 such videos, ~25 GB) is far out.
    assert default.max_request_bytes * default.max_batch < 8 * video
    # The largest admitted request, at the measured peak per input byte, plus the reserves,
    # fits the budget.
    peak = default.max_request_bytes * limits.PEAK_BYTES_PER_INPUT_BYTE
    assert peak + limits.SERVER_BASE_BYTES < default.memory_budget_bytes


def test_budget_scales_the_request_and_a_too_small_budget_is_refused(source):
    model, specs = source
    small = limits.limits_for_budget(2 * limits.GIB, model, specs)
    large = limits.limits_for_budget(16 * limits.GIB, model, specs)
    assert 0 < small.max_request_bytes < large.max_request_bytes
    assert large.memory_budget_bytes == 16 * limits.GIB
    # More videos per request reserve more activations: less room for the frames.
    wide = limits.limits_for_budget(16 * limits.GIB, model, specs, max_batch=4096)
    assert wide.max_request_bytes < large.max_request_bytes
    with pytest.raises(ValueError, match="memory budget of 0.5 GiB leaves nothing"):
        limits.limits_for_budget(limits.GIB // 2, model, specs)


def _padded_jpeg(padding: int) -> bytes:
    """A valid 16x16 JPEG followed by `padding` bytes (decoders stop at the end marker)."""
    return tf.io.encode_jpeg(tf.zeros([16, 16, 3], tf.uint8)).numpy() + b"\0" * padding


def test_requests_over_max_request_bytes_are_invalid_argument(loaded, export):
    metadata = json.loads(pathlib.Path(export["path"], METADATA_FILE).read_text())
    assert metadata["limits"]["max_request_bytes"] == LIMITS.max_request_bytes
    # Within every shape limit (4 videos, 32 frames, 60x60 <= 100x100 pixels) but 1.38 MB.
    over = np.zeros([4, 32, 60, 60, 3], np.uint8)
    for signature in ("motion", "serving_default", "embedding"):
        with pytest.raises(tf.errors.InvalidArgumentError, match="max_request_bytes=1000000"):
            loaded.signatures[signature](frames=tf.constant(over))
    under = loaded.signatures["embedding"](frames=tf.constant(over[:, :, :40, :40]))  # 614 kB
    assert under["embedding"].shape == (4, 32)
    jpegs = np.array([[_padded_jpeg(40_000)] * 32], dtype=object)  # 1.3 MB of strings
    with pytest.raises(tf.errors.InvalidArgumentError, match="JPEG frames must take at most"):
        loaded.signatures["motion_jpeg"](jpeg_frames=tf.constant(jpegs))


def test_export_cli_refuses_a_budget_without_room(tmp_path, workdir, capsys):
    code = export_cli.main(
        ["--workdir", str(workdir), "--out", str(tmp_path / "cover"), "--memory-budget-gib", "0.5"]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith(
        "export: error: a memory budget of 0.5 GiB leaves nothing for a request"
    )
    assert not (tmp_path / "cover").exists()


def test_budget_limits_give_preprocessing_the_views_activation_reserve(source):
    model, specs = source
    derived = limits.limits_for_budget(2 * limits.GIB, model, specs, max_batch=4)
    assert derived.max_preprocess_bytes == 4 * limits.views_bytes(model, specs)
    assert limits.resolve(LIMITS, model, specs).max_preprocess_bytes == (
        LIMITS.max_batch * limits.views_bytes(model, specs)
    )
    assert limits.resolve(derived, model, specs) is derived


def test_preprocessing_estimate_follows_the_resized_size(source):
    _, specs = source
    motion = specs["motion"].eval_config  # 2 clips x 4 frames, short side 32
    sizes = tf.constant([[1.0, 65_500.0], [40.0, 40.0]], tf.float64)
    estimate = float(limits.preprocess_bytes(sizes, [motion]))
    wide = 3 * 65_500 + 16 * 32 * 2_096_000 + 12 * max(32 * 65_500, 1 * 2_096_000)
    square = 3 * 1600 + 16 * 32 * 32 + 12 * 32 * 40
    assert estimate == 8 * (wide + square)
    # What a request's bytes leave of its share, plus the reserve.
    resolved = limits.resolve(LIMITS, *source)
    assert limits.preprocess_allowance(LIMITS.max_request_bytes, resolved) == (
        resolved.max_preprocess_bytes
    )


def test_a_frame_within_max_pixels_that_resizes_too_large_is_invalid_argument(loaded):
    # 1 x 10,000 pixels is within max_pixels=10000; resized to the 32-pixel short side it would
    # be 32 x 320,000 float32 pixels per sampled frame (8 of them).
    for signature in ("motion", "serving_default", "embedding"):
        with pytest.raises(tf.errors.InvalidArgumentError, match="max_preprocess_bytes="):
            loaded.signatures[signature](frames=tf.zeros([1, 1, 1, 10_000, 3], tf.uint8))
    jpeg = tf.io.encode_jpeg(tf.zeros([10_000, 1, 3], tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"short side \(36 pixels\)"):
        loaded.signatures["images_jpeg"](jpeg_frames=tf.reshape(jpeg, [1, 1]))
    # A usual frame of the same size class is served.
    answer = loaded.signatures["motion"](frames=tf.zeros([1, 2, 75, 133, 3], tf.uint8))
    assert answer["probabilities"].shape == (1, 5)
