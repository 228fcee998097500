"""Serving memory stays within the export's limits whatever the frames' aspect ratio.

The tiny model is exported for a 2 GiB memory budget (1080p frames, 8 videos a request); a fresh
process loads the SavedModel and calls its signatures, as a model server would, reporting each
call's error and how much it added to the process's peak resident memory (Linux: VmHWM after
/proc/self/clear_refs). A watchdog ends the process once it has grown by WATCHDOG_BYTES, so a
regression fails the test instead of exhausting the machine.
"""

import json
import os
import subprocess
import sys

import pytest

from cover_tf.serving.exporter import export_model
from cover_tf.serving.heads import load_source, write_workdir
from cover_tf.serving.limits import GIB, limits_for_budget
from tests.serving.conftest import HEADS, REPO, eval_configs, tiny_model

MB = 1_000_000
BUDGET_GIB = 2
WATCHDOG_BYTES = 2_000 * MB
# Extreme aspect ratios that pass every shape limit (1080p = 2,073,600 pixels a frame).
WIDE = (1, 65_500)
ONE_ROW = (1, 1920 * 1080)
# The eval short side each signature resizes to (tests/serving/conftest.py's heads; the
# embedding uses the first head by name, "images").
SHORT_SIDES = {"motion": "32", "images": "36", "embedding": "36", "serving_default": "32 and 36"}

CALLS = r"""
import json, os, pathlib, sys, threading
import numpy as np
import tensorflow as tf

export, requests, watchdog = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])


def status(field):
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024


def request(signature, batch, frames, height, width):
    if signature.endswith("_jpeg"):
        jpeg = tf.io.encode_jpeg(tf.zeros([height, width, 3], tf.uint8)).numpy()
        return {"jpeg_frames": tf.constant(np.array([[jpeg] * frames] * batch, dtype=object))}
    return {"frames": tf.constant(np.zeros([batch, frames, height, width, 3], np.uint8))}


def guard(base):
    while True:
        if status("VmRSS") - base[0] > watchdog:
            print(json.dumps({"error": "killed by the watchdog"}), flush=True)
            os._exit(3)
        threading.Event().wait(0.002)


loaded = tf.saved_model.load(export)
for signature, _ in requests:  # warm-up: traced, thread pools up
    loaded.signatures[signature](**request(signature, 1, 2, 24, 40))
base = [status("VmRSS")]
threading.Thread(target=guard, args=(base,), daemon=True).start()
for signature, shape in requests:
    inputs = request(signature, *shape)
    sent = sum(int(tf.size(v)) if v.dtype == tf.uint8 else int(tf.reduce_sum(tf.strings.length(v)))
               for v in inputs.values())
    base[0] = status("VmRSS")
    pathlib.Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    try:
        loaded.signatures[signature](**inputs)
        error, message = None, ""
    except tf.errors.OpError as failure:
        error, message = type(failure).__name__, failure.message
    added = status("VmHWM") - base[0]
    print(json.dumps({"error": error, "message": message, "added_bytes": added, "sent": sent}))
    del inputs
"""


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> dict:
    """The tiny model's export for a 2 GiB budget, 1080p frames and 8 videos a request."""
    model, specs = load_source(workdir=workdir(tmp_path_factory))
    limits = limits_for_budget(BUDGET_GIB * GIB, model, specs, max_frames=64)
    assert limits.max_pixels == 1920 * 1080 and limits.max_batch == 8
    base = tmp_path_factory.mktemp("memory") / "cover"
    return export_model(model, specs, base, limits=limits, check=False)


def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("memory_workdir")
    class_names = {head: [f"{head}_{i}" for i in range(n)] for head, n in HEADS.items()}
    write_workdir(path, tiny_model(), class_names, eval_configs())
    return path


def serve(export_dir, requests) -> list[dict]:
    """What each request (signature, [B, T, H, W]) got, served in turn by one fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", CALLS, export_dir["path"], json.dumps(requests)]
        + [str(WATCHDOG_BYTES)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(answers) == len(requests), (answers, result.stderr[-3000:])
    return answers


@pytest.mark.slow  # the export and a served process: ~2.5 min on 2 busy cores
def test_extreme_aspect_ratios_are_invalid_argument_within_500_mb(export_dir):
    # Eight 1 x 65,500 JPEG frames (136 kB) took 20 s and 7.6 GB, and a 1 x 2,073,600 frame
    # (within max_pixels) raised ResourceExhausted: resized to the short side first, each would
    # be a tensor of gigabytes.
    requests = [
        ("motion_jpeg", [1, 8, *WIDE]),
        ("embedding_jpeg", [8, 8, *WIDE]),
        ("images_jpeg", [8, 1, *reversed(WIDE)]),
        ("motion", [1, 1, *ONE_ROW]),
        ("serving_default", [1, 1, *ONE_ROW]),
        ("embedding", [1, 1, *reversed(ONE_ROW)]),
    ]
    answers = serve(export_dir, requests)
    for (signature, shape), answer in zip(requests, answers, strict=True):
        assert answer["error"] == "InvalidArgumentError", (signature, shape, answer)
        assert "max_preprocess_bytes=" in answer["message"], answer["message"]
        side = SHORT_SIDES[signature.removesuffix("_jpeg")]
        assert f"to the model short side ({side} pixels)" in answer["message"], answer["message"]
        assert answer["added_bytes"] < 500 * MB, (signature, shape, answer)
    assert answers[0]["sent"] < 140_000  # 8 wide JPEGs: a 136 kB request


@pytest.mark.slow  # ~1 min on 2 busy cores, after the export
def test_usual_frames_up_to_the_limits_are_served_within_the_budget(export_dir):
    requests = [
        ("motion", [8, 8, 1080, 1920]),  # 398 MB of frames: over max_request_bytes (~206 MB)
        ("serving_default", [2, 8, 1080, 1920]),  # 100 MB
        ("motion_jpeg", [4, 8, 600, 1400]),  # 21:9
        ("embedding", [8, 1, 40, 2000]),  # 1:50 strips, within what the budget leaves
        # A 1:45,000 strip whose resize to the image head's short side (36 x 1,620,000) takes
        # ~0.8 GB: within what this budget leaves a 49 kB request, so it is served.
        ("embedding_jpeg", [1, 1, 1, 45_000]),
    ]
    answers = serve(export_dir, requests)
    assert answers[0]["error"] == "InvalidArgumentError"
    assert "max_request_bytes=" in answers[0]["message"], answers[0]
    for answer in answers[1:]:
        assert answer["error"] is None, answer
        assert answer["added_bytes"] < (BUDGET_GIB - 1) * GIB, answer
