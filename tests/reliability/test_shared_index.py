"""Two `python -m cover_tf.retrieval index` runs into one index at the same time keep every file.

Before, both exited 0 and reported their own files, and the index held only the last writer's.
"""

import json
import subprocess
import sys
import time

import pytest

from cover_tf.retrieval.index_store import EmbeddingIndex
from tests.retrieval.conftest import export, source, workdir  # noqa: F401  (fixtures)
from tests.serving.conftest import REPO


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two folders of real photos: 4 in one, 3 in the other."""
    import skimage.data
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    names = ["astronaut", "coffee", "chelsea", "rocket", "camera", "horse", "moon"]
    for number, name in enumerate(names):
        folder = root / ("first" if number < 4 else "second")
        folder.mkdir(exist_ok=True)
        image = getattr(skimage.data, name)()
        Image.fromarray(image).convert("RGB").save(folder / f"{name}.jpg")
    return root


@pytest.mark.slow  # two concurrent runs, each loading TensorFlow and the export: ~1.5 min
def test_two_concurrent_index_runs_keep_every_file(export, photos, tmp_path):  # noqa: F811
    index = tmp_path / "index"
    runs = []
    for folder in ("first", "second"):
        runs.append(
            subprocess.Popen(
                [sys.executable, "-m", "cover_tf.retrieval", "index", str(photos / folder)]
                + ["--model", export["base"], "--out", str(index), "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
        )
        if folder == "first":
            time.sleep(0.5)  # 0.5 s apart, as in the report
    reports = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-2000:]
        reports.append(json.loads(out))
    assert [report["added"] for report in reports] == [4, 3]
    assert max(report["total"] for report in reports) == 7
    held = sorted(item["path"] for item in EmbeddingIndex.load(index).items)
    assert held == sorted(str(path.resolve()) for path in photos.glob("*/*.jpg"))
    assert not (index / "LOCK").exists()
    # A third run finds everything indexed.
    third = subprocess.run(
        [sys.executable, "-m", "cover_tf.retrieval", "index", str(photos), "--model"]
        + [export["base"], "--out", str(index), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    report = json.loads(third.stdout)
    assert (report["added"], report["already_indexed"], report["total"]) == (0, 7, 7)
