"""`model.init_checkpoint`: starting training from a converted or earlier `.keras` CoVeR model."""

import numpy as np

from cover_tf.config import ModelConfig
from cover_tf.models import build_cover_model
from cover_tf.training import build_model

SMALL = dict(hidden_size=32, num_layers=2, num_heads=2, patch_size=8, image_size=32)


def source_checkpoint(tmp_path):
    source = build_cover_model({"motion": 8, "images": 24}, num_frames=4, **SMALL)
    path = tmp_path / "source.keras"
    source.save(path)
    return source, path


def config(path, **overrides):
    return ModelConfig(variant=None, num_frames=8, init_checkpoint=str(path), **SMALL, **overrides)


def test_backbone_and_matching_heads_come_from_the_checkpoint(tmp_path):
    source, path = source_checkpoint(tmp_path)
    # motion: same name and size (loaded); images: other size (new); appearance: new name
    model = build_model(config(path), {"motion": 8, "images": 10, "appearance": 12})
    ours, theirs = model.backbone.weights, source.backbone.weights
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        if "time_embedding" in a.path:  # 4 frames in the source, 8 here: resized
            assert a.shape[1] == 8 and b.shape[1] == 4
        else:
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(model.heads["motion"].weights, source.heads["motion"].weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    frames = np.random.default_rng(0).normal(size=(2, 4, 32, 32, 3)).astype("float32")
    # The time embedding starts at zero, so the 8-frame model equals the source on 4-frame clips.
    np.testing.assert_allclose(
        model(frames)["motion"], source(frames)["motion"], rtol=1e-5, atol=1e-5
    )


def test_init_heads_false_starts_every_head_new(tmp_path):
    source, path = source_checkpoint(tmp_path)
    model = build_model(config(path, init_heads=False), {"motion": 8})
    kernel = model.heads["motion"].weights[0].numpy()
    assert not np.array_equal(kernel, source.heads["motion"].weights[0].numpy())
    np.testing.assert_array_equal(
        model.backbone.weights[0].numpy(), source.backbone.weights[0].numpy()
    )
