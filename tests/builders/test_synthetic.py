"""cover_synthetic's rendering: determinism, class balance, what horizontal flips do, and the
family's honesty: no single frame tells the motion class, one frame tells the appearance class."""

import dataclasses

import numpy as np
import pytest
import tensorflow_datasets as tfds

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
    builder._version = synthetic.Builder.VERSION
    examples = list(builder._generate_examples("train"))
    labels = [example["label"] for _, example in examples]
    assert np.bincount(labels).tolist() == [3] * 8
    again = list(builder._generate_examples("train"))
    assert [e["video"] for _, e in examples] == [e["video"] for _, e in again]
    assert all(e["fps"] == np.float32(8.0) for _, e in examples)


def test_rendering_on_two_processes_gives_the_same_examples():
    # `make demo` renders on every core; the examples depend on their seeds only.
    config = synthetic.SyntheticConfig(name="t", task="appearance", train_per_class=6)
    jobs = [(config, "train", label, index) for label in range(12) for index in range(6)]
    serial = list(synthetic.rendered(jobs, workers=1))
    parallel = list(synthetic.rendered(jobs, workers=2))
    assert [key for key, _ in parallel] == [key for key, _ in serial] and len(serial) == 72
    assert [e["video"] for _, e in parallel] == [e["video"] for _, e in serial]


def test_default_sizes():
    configs = _configs()
    assert len(synthetic.class_names("appearance")) == 12
    assert len(synthetic.class_names("motion")) == 8
    assert len(synthetic.class_names("images")) == 24
    assert configs["appearance"].train_per_class < configs["motion"].train_per_class
    # Images include every appearance object, under the same class name.
    assert set(synthetic.class_names("appearance")) <= set(synthetic.class_names("images"))


def _horizontal_velocity(clip: np.ndarray) -> float:
    """Median horizontal shift (pixels per frame) that best aligns each frame difference with
    the next one; circular shifts, so an object wrapping around the edge still counts."""
    grey = clip.astype(np.float32).mean(-1)
    change = np.diff(grey, axis=0)
    shifts = range(-3, 4)
    best = [
        max(shifts, key=lambda s: float((after * np.roll(before, s, axis=1)).sum()))
        for before, after in zip(change[:-1], change[1:], strict=True)
    ]
    return float(np.median(best))


@pytest.mark.parametrize("seed", range(4))
def test_horizontal_flip_turns_left_to_right_into_right_to_left(seed):
    left_to_right = render.render_motion_clip(seed, "left_to_right")
    right_to_left = render.render_motion_clip(seed + 100, "right_to_left")
    assert _horizontal_velocity(left_to_right) >= 1
    assert _horizontal_velocity(right_to_left) <= -1
    assert _horizontal_velocity(left_to_right[:, :, ::-1]) <= -1  # the flip: right_to_left
    assert render.MOTION_FLIP["left_to_right"] == "right_to_left"
    assert render.MOTION_FLIP["rotating_clockwise"] == "rotating_anticlockwise"


def test_appearance_objects_move_at_random():
    velocities = [_horizontal_velocity(render.render_appearance_clip(s, 0)) for s in range(8)]
    assert min(velocities) < 0 < max(velocities)  # direction does not give the class away


def _uniformity_gap(values: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of `values` in [0, 1) from the uniform distribution."""
    values = np.sort(values)
    n = len(values)
    return float(max((np.arange(1, n + 1) / n - values).max(), (values - np.arange(n) / n).max()))


def test_any_single_frame_of_a_motion_clip_has_the_same_state_whatever_the_class():
    """Position (on the torus), angle and log-scale at a fixed frame are uniform for every class;
    the change between frames is what differs (the old renderer failed the first part: a
    left_to_right object started on the left)."""
    size, frames, n = 40, 16, 400
    low, high = render._MOTION_SCALE
    # KS critical value for a family of 3 frames x 4 statistics per class at alpha = 0.001 in all
    # (Bonferroni); the seeds are fixed, so a pass or a failure repeats.
    tests = len(render.MOTION_CLASSES) * 3 * 4
    critical = np.sqrt(-np.log(0.001 / 2 / tests) / (2 * n))
    velocity = {}
    for index, motion in enumerate(render.MOTION_CLASSES):
        rng = np.random.default_rng(index)
        states = [render.motion_trajectory(rng, motion, frames, size) for _ in range(n)]
        cx, cy, scale, angle = (np.stack(values) for values in zip(*states, strict=True))
        for t in (0, frames // 2, frames - 1):
            for name, unit in (
                ("x", (cx[:, t] % size) / size),
                ("y", (cy[:, t] % size) / size),
                ("angle", (angle[:, t] % (2 * np.pi)) / (2 * np.pi)),
                ("log-scale", np.log(scale[:, t] / (low * size)) / np.log(high / low)),
            ):
                assert _uniformity_gap(unit) < critical, (motion, t, name)
        velocity[motion] = np.mean(cx[:, 1] - cx[:, 0]), np.mean(cy[:, 1] - cy[:, 0])
    assert velocity["left_to_right"][0] > 0.8 > -0.8 > velocity["right_to_left"][0]
    assert velocity["moving_down"][1] > 0.8 > -0.8 > velocity["moving_up"][1]


def _single_frame_features(frame: np.ndarray) -> np.ndarray:
    """What one frame shows: a 4x4x4 colour histogram and the 8x8 colour layout."""
    pixels = frame.astype(np.float32) / 255.0
    bins = np.minimum((pixels * 4).astype(int), 3)
    codes = (bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]).ravel()
    histogram = np.bincount(codes, minlength=64) / codes.size
    side = pixels.shape[0] // 8
    layout = pixels[: 8 * side, : 8 * side].reshape(8, side, 8, side, 3).mean((1, 3))
    return np.concatenate([histogram, layout.ravel()])


def _motion_energy(clip: np.ndarray) -> np.ndarray:
    """What time shows: how well each frame difference matches the previous one shifted by
    (dy, dx), for shifts up to 3 pixels (a textbook motion-energy feature)."""
    change = np.diff(clip.astype(np.float32).mean(-1), axis=0)
    energy = np.array(
        [
            (change[1:] * np.roll(change[:-1], (dy, dx), axis=(1, 2))).mean()
            for dy in range(-3, 4)
            for dx in range(-3, 4)
        ]
    )
    return energy / (np.abs(energy).max() + 1e-6)


def _ridge_accuracy(train, test, num_classes, penalty):
    """Held-out accuracy of a ridge-regression classifier on standardised features."""
    (x_train, y_train), (x_test, y_test) = train, test
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    design = np.c_[(x_train - mean) / std, np.ones(len(x_train))]
    weights = np.linalg.solve(
        design.T @ design + penalty * np.eye(design.shape[1]),
        design.T @ np.eye(num_classes)[y_train],
    )
    scores = np.c_[(x_test - mean) / std, np.ones(len(x_test))] @ weights
    return float(np.mean(scores.argmax(1) == y_test))


def _clips(task, per_class):
    """(train, test) of (clips, labels), `per_class` examples of each class from the builder."""
    config = _configs()[task]
    labels = np.repeat(np.arange(len(synthetic.class_names(task))), per_class)
    return [
        (
            [
                synthetic.render_example(config, split, label, i % per_class)
                for i, label in enumerate(labels)
            ],
            labels,
        )
        for split in ("train", "test")
    ]


def _features(splits, features):
    return [(np.stack([features(clip) for clip in clips]), labels) for clips, labels in splits]


def test_a_single_frame_tells_appearance_but_not_motion_and_time_tells_motion():
    """A classifier of one frame's colours and layout is at chance on motion (at the first,
    middle and last frame) but far above it on appearance; motion-energy features of the whole
    clip tell the motion class. So the motion set needs temporal modelling and appearance not."""
    motion, classes = _clips("motion", 16), len(render.MOTION_CLASSES)
    chance, n = 1 / classes, len(motion[1][1])
    bound = chance + 3 * np.sqrt(chance * (1 - chance) / n)
    for t in (0, 8, 15):
        train, test = _features(motion, lambda clip, t=t: _single_frame_features(clip[t]))
        assert _ridge_accuracy(train, test, classes, penalty=10.0) < bound, t
    train, test = _features(motion, _motion_energy)
    assert _ridge_accuracy(train, test, classes, penalty=1.0) > 3 * chance
    appearance, classes = _clips("appearance", 6), len(render.APPEARANCE_OBJECTS)
    train, test = _features(appearance, lambda clip: _single_frame_features(clip[0]))
    assert _ridge_accuracy(train, test, classes, penalty=10.0) > 3 / classes


def _aspect(mask: np.ndarray) -> float:
    """Long over short axis of a mask's second moments: 1 for a square at any angle."""
    rows, cols = np.nonzero(mask)
    low, high = np.linalg.eigvalsh(np.cov(np.stack([rows, cols]).astype(np.float64)))
    return float(np.sqrt(high / low))


def test_from_2_3_0_the_diamond_is_no_turned_square():
    """At a random angle a square turned by 45 degrees is a square: 2.2.0's red_checker_square
    and red_stripes_diamond differed by texture only. 2.3.0's diamond is a rhombus."""
    v, u = np.mgrid[-1:1:401j, -1:1:401j]
    configs = _configs()
    new, old = configs["appearance"], configs["appearance_2_2"]
    assert (new.version, old.version) == (None, "2.2.0")  # None: the builder's, 2.3.0
    assert str(synthetic.Builder.VERSION) == "2.3.0"
    assert _aspect(render._shape_mask("square", u, v, new.look)) == pytest.approx(1, abs=0.01)
    assert _aspect(render._shape_mask("diamond", u, v, old.look)) == pytest.approx(1, abs=0.01)
    assert _aspect(render._shape_mask("diamond", u, v, new.look)) > 1.5


def test_the_2_2_configs_build_version_2_2_0_pixels(tmp_path):
    """The README's study was measured on cover_synthetic 2.2.0 and pins its `*_2_2` configs:
    they build as version 2.2.0 with its look, the plain configs as 2.3.0."""
    diamond = synthetic.class_names("appearance").index("red_stripes_diamond")
    videos = {}
    for name, version in (("appearance_2_2", "2.2.0"), ("appearance", "2.3.0")):
        config = dataclasses.replace(
            _configs()[name], name=f"{name}_small", train_per_class=1, test_per_class=1
        )
        builder = synthetic.Builder(config=config, data_dir=tmp_path)
        builder.download_and_prepare()
        assert str(builder.info.version) == version
        test = builder.as_dataset(split="test", decoders={"video": tfds.decode.SkipDecoding()})
        example = next(e for e in test if int(e["label"]) == diamond)
        videos[name] = [frame.numpy() for frame in example["video"]]
        _, expected = synthetic.encoded_example((config, "test", diamond, 0))
        assert videos[name] == expected["video"], name
    assert videos["appearance_2_2"] != videos["appearance"]
