"""cover_synthetic's rendering: determinism, class balance, and what horizontal flips do."""

import numpy as np
import pytest

from cover_tf.builders import registry
from cover_tf.builders import synthetic_render as render

synthetic = registry.load_builder_module("cover_synthetic")


def _configs():
    return {config.name: config for config in synthetic.Builder.BUILDER_CONFIGS}


@pytest.mark.parametrize("task", ["appearance", "motion", "images"])
def test_same_seed_same_pixels_other_seed_other_pixels(task):
    config = _configs()[task]
    first = synthetic.render_example(config, "train", 3, 5)
    assert np.array_equal(first, synthetic.render_example(config, "train", 3, 5))
    assert not np.array_equal(first, synthetic.render_example(config, "train", 3, 6))
    assert not np.array_equal(first, synthetic.render_example(config, "test", 3, 5))
    expected = (40, 40, 3) if task == "images" else (16, 40, 40, 3)
    assert first.shape == expected and first.dtype == np.uint8


def test_generated_examples_are_balanced_and_deterministic_bytes():
    config = synthetic.SyntheticConfig(name="t", task="motion", train_per_class=3, test_per_class=1)
    builder = synthetic.Builder.__new__(synthetic.Builder)
    builder._builder_config = config  # only what _generate_examples reads
    examples = list(builder._generate_examples("train"))
    labels = [example["label"] for _, example in examples]
    assert np.bincount(labels).tolist() == [3] * 8
    again = list(builder._generate_examples("train"))
    assert [e["video"] for _, e in examples] == [e["video"] for _, e in again]
    assert all(e["fps"] == np.float32(8.0) for _, e in examples)


def test_default_sizes():
    configs = _configs()
    assert len(synthetic.class_names("appearance")) == 12
    assert len(synthetic.class_names("motion")) == 8
    assert len(synthetic.class_names("images")) == 24
    assert configs["appearance"].train_per_class < configs["motion"].train_per_class
    # Images include every appearance object, under the same class name.
    assert set(synthetic.class_names("appearance")) <= set(synthetic.class_names("images"))


def _horizontal_track(clip: np.ndarray) -> np.ndarray:
    """x centroid per frame of what moves (pixels far from the clip's temporal median)."""
    moving = np.abs(clip.astype(np.float32) - np.median(clip, axis=0)).sum(-1) > 120
    xs = np.arange(clip.shape[2])
    return np.array([(m.sum(0) * xs).sum() / max(m.sum(), 1) for m in moving])


@pytest.mark.parametrize("seed", range(4))
def test_horizontal_flip_turns_left_to_right_into_right_to_left(seed):
    left_to_right = render.render_motion_clip(seed, "left_to_right")
    right_to_left = render.render_motion_clip(seed + 100, "right_to_left")
    slope = lambda clip: np.polyfit(np.arange(len(clip)), _horizontal_track(clip), 1)[0]  # noqa: E731
    assert slope(left_to_right) > 0.5
    assert slope(right_to_left) < -0.5
    assert slope(left_to_right[:, :, ::-1]) < -0.5  # the flip looks like right_to_left
    assert render.MOTION_FLIP["left_to_right"] == "right_to_left"
    assert render.MOTION_FLIP["rotating_clockwise"] == "rotating_anticlockwise"


def test_appearance_objects_move_at_random():
    tracks = [_horizontal_track(render.render_appearance_clip(s, 0)) for s in range(8)]
    slopes = [np.polyfit(np.arange(16), t, 1)[0] for t in tracks]
    assert min(slopes) < 0 < max(slopes)  # direction does not give the class away
