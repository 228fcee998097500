"""python -m cover_tf.predict on real files: H.264 mp4, VP9 webm, a corrupt file, a missing one."""

import json

import numpy as np
import pytest

from cover_tf import predict
from cover_tf.builders.video_writer import write_video
from cover_tf.serving.signatures import reference_probabilities
from tests.serving.conftest import TOP_K


def run_predict(capsys, argv) -> tuple[int, list[dict]]:
    code = predict.main(argv)
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture(scope="module")
def corrupt_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corrupt") / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def test_predict_with_the_export(export, source, real_clip, webm_clip, corrupt_file, capsys):
    missing = corrupt_file.parent / "missing.webm"
    videos = [real_clip[0], corrupt_file, webm_clip[0], missing]
    code, answers = run_predict(
        capsys, [*map(str, videos), "--model", export["base"], "--json", "--top", "2"]
    )
    assert code == 1
    assert [answer["video"] for answer in answers] == [str(video) for video in videos]
    assert "corrupt.mp4" in answers[1]["error"]
    assert "file not found" in answers[3]["error"]
    model, specs = source
    for answer, (_, frames) in ((answers[0], real_clip), (answers[2], webm_clip)):
        assert answer["frames"] == len(frames) and sorted(answer["heads"]) == ["images", "motion"]
        for head, top in answer["heads"].items():
            expected = reference_probabilities(model, specs[head], frames[None])[0]
            order = np.argsort(-expected, kind="stable")[:2]
            assert [entry["class"] for entry in top] == [specs[head].class_names[i] for i in order]
            np.testing.assert_allclose(
                [entry["probability"] for entry in top], expected[order], atol=1e-5
            )


def test_predict_with_the_keras_file_matches_the_export(
    export, workdir, real_clip, webm_clip, capsys
):
    videos = [str(real_clip[0]), str(webm_clip[0])]
    code, from_export = run_predict(
        capsys, [*videos, "--model", export["path"], "--head", "motion", "--json"]
    )
    code_keras, from_keras = run_predict(
        capsys,
        [
            *videos,
            "--model",
            str(workdir / "model.keras"),
            "--datasets",
            str(workdir / "datasets.json"),
            "--head",
            "motion",
            "--json",
            "--top",
            str(TOP_K),
        ],
    )
    assert code == code_keras == 0
    for exported, direct in zip(from_export, from_keras, strict=True):
        assert list(exported["heads"]) == list(direct["heads"]) == ["motion"]
        top_export, top_keras = exported["heads"]["motion"], direct["heads"]["motion"]
        assert [entry["class"] for entry in top_export] == [entry["class"] for entry in top_keras]
        np.testing.assert_allclose(
            [entry["probability"] for entry in top_export],
            [entry["probability"] for entry in top_keras],
            atol=1e-5,
        )


def test_predict_text_output_and_refusals(export, real_clip, tmp_path, capsys):
    # A video larger than the export's max_pixels is refused with the limit's message.
    code = predict.main([str(real_clip[0]), "--model", export["path"], "--head", "images"])
    text = capsys.readouterr().out
    assert code == 0 and text.startswith(str(real_clip[0])) and "images: image_" in text
    big = tmp_path / "big.mp4"
    write_video(big, np.zeros([2, 128, 128, 3], np.uint8))
    code = predict.main([str(big), "--model", export["path"], "--head", "motion"])
    text = capsys.readouterr().out
    assert code == 1 and "ERROR the model refused the video" in text and "max_pixels" in text
    assert predict.main([str(big), "--model", export["path"], "--head", "nope"]) == 2
