"""Export and predict on a non-local filesystem (TF's in-memory `ram://`), nothing on local disk."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from cover_tf.serving import versions
from cover_tf.serving.heads import SourceError
from tests.serving.conftest import REPO

# Runs in a fresh process whose temp dir, home and working directory are empty local folders:
# the test then checks they stayed empty. ram:// lives in that process's memory only.
RAM_SCRIPT = """
import json, sys
import numpy as np
from cover_tf import export, predict
from cover_tf.serving.heads import write_workdir
from cover_tf.serving.predictors import KerasPredictor, SavedModelPredictor
from tests.serving.conftest import eval_configs, tiny_model

model = tiny_model()
names = {"motion": [f"m{i}" for i in range(5)], "images": [f"i{i}" for i in range(7)]}
write_workdir("ram://run", model, names, eval_configs())
codes = [export.main(["--workdir", "ram://run", "--out", "ram://exports/cover"]) for _ in range(2)]
video = np.random.default_rng(0).integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)
exported = SavedModelPredictor("ram://exports/cover")
direct = KerasPredictor("ram://run/model.keras", "ram://run/datasets.json")
code = predict.main([sys.argv[1], "--model", "ram://exports/cover", "--json", "--head", "motion"])
print(json.dumps({
    "export_codes": codes,
    "predict_code": code,
    "path": exported.path,
    "embed_diff": float(np.abs(exported.embed(video) - direct.embed(video)).max()),
    "top": [exported.predict(video)["motion"][0]["class"], direct.predict(video)["motion"][0]["class"]],
}))
"""


def local_files(*folders) -> list[str]:
    return sorted(
        os.path.join(root, name)
        for folder in folders
        for root, _, files in os.walk(folder)
        for name in files
    )


@pytest.mark.slow  # a fresh TF process exporting twice (~40 s on a quiet machine)
def test_export_and_predict_on_ram_write_nothing_locally(tmp_path, real_clip):
    scratch = {name: tmp_path / name for name in ("tmp", "home", "cwd")}
    for folder in scratch.values():
        folder.mkdir()
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(REPO),
        "TMPDIR": str(scratch["tmp"]),
        "HOME": str(scratch["home"]),
        # Tool caches written on import (Keras' keras.json, matplotlib's font list) go elsewhere:
        # they are not the export's or the model's files.
        "KERAS_HOME": str(tmp_path / "caches" / "keras"),
        "MPLCONFIGDIR": str(tmp_path / "caches" / "matplotlib"),
        # Python's bytecode of the modules autograph generates in TMPDIR (the make targets let
        # Python write bytecode): an interpreter cache, not the export's files.
        "PYTHONPYCACHEPREFIX": str(tmp_path / "caches" / "pycache"),
    }
    result = subprocess.run(
        [sys.executable, "-c", RAM_SCRIPT, str(real_clip[0])],
        capture_output=True,
        text=True,
        env=env,
        cwd=scratch["cwd"],
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    answer = json.loads(lines[-1])
    assert answer["export_codes"] == [0, 0] and answer["predict_code"] == 0
    assert answer["path"] == "ram://exports/cover/2"  # the second export is the newest version
    assert answer["embed_diff"] < 1e-5 and answer["top"][0] == answer["top"][1]
    predicted = json.loads(lines[-2])
    assert predicted["heads"]["motion"][0]["class"].startswith("m")
    assert local_files(*scratch.values()) == []


def test_a_half_copied_version_is_never_used(export):
    base = "ram://half/cover"
    tf.io.gfile.makedirs(base)
    for name in versions.files_under(export["path"]):
        tf.io.gfile.makedirs(os.path.dirname(f"{base}/1/{name}"))
        tf.io.gfile.copy(f"{export['path']}/{name}", f"{base}/1/{name}")
    # Version 2 interrupted mid-copy: variables there, no saved_model.pb, no marker.
    tf.io.gfile.makedirs(f"{base}/2/variables")
    tf.io.gfile.copy(
        f"{export['path']}/variables/variables.index", f"{base}/2/variables/variables.index"
    )
    assert versions.existing_versions(base) == [1, 2]
    assert versions.resolve_export(base) == f"{base}/1"
    with pytest.raises(SourceError, match="neither a SavedModel nor an export base"):
        versions.resolve_export(f"{base}/2")
