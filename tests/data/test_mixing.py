"""Mixing: weights, observed dataset frequencies, head routing, groups, eval dataset."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from conftest import MEAN, STD, image_config, make_builder, video_config

from cover_tf.data import input_pipeline, mixing, reader
from cover_tf.data.dataset_config import MixingConfig

SIZES = {"small": 100, "medium": 300, "large": 600}


@pytest.fixture(scope="module")
def sized_builders(data_dir):
    """Three image datasets of 100 / 300 / 600 examples (8 x 8 px, 1 class each is enough)."""
    return {
        name: make_builder(
            data_dir,
            f"img{size}",
            kind="image",
            num_train=size,
            num_validation=1,
            height=8,
            width=8,
            num_classes=2,
        )
        for name, size in SIZES.items()
    }


def _image_configs():
    return [
        image_config(name=name, crop_size=8, train_short_side_range=(8, 8), eval_short_side=8)
        for name in SIZES
    ]


def _count_samples(dataset, names, num_batches):
    counts = dict.fromkeys(names, 0)
    for _frames, labels, weights in dataset.take(num_batches):
        stacked = np.stack([weights[name].numpy() for name in names])  # [heads, B]
        np.testing.assert_array_equal(stacked.sum(0), 1.0)  # exactly one head per sample
        for i, name in enumerate(names):
            own = stacked[i] == 1
            counts[name] += int(own.sum())
            np.testing.assert_allclose(labels[name].numpy()[own].sum(-1), 1.0, rtol=1e-5)
            np.testing.assert_array_equal(labels[name].numpy()[~own], 0.0)
    return counts


def _assert_frequencies(counts, expected):
    total = sum(counts.values())
    for name, p in expected.items():
        sigma = np.sqrt(total * p * (1 - p))
        assert abs(counts[name] - total * p) <= 4 * sigma, (name, counts, expected)


def test_dataset_weights_formula_and_log(caplog):
    caplog.set_level(logging.INFO, logger="absl")
    weights = mixing.dataset_weights(SIZES, alpha=1.0)
    assert weights == pytest.approx({"small": 0.1, "medium": 0.3, "large": 0.6})
    assert "small: 0.1000, medium: 0.3000, large: 0.6000" in caplog.text
    sqrt = mixing.dataset_weights(SIZES, alpha=0.5)
    assert sqrt["large"] / sqrt["small"] == pytest.approx(np.sqrt(6))
    override = mixing.dataset_weights(SIZES, 1.0, {"small": 900.0, "large": None})
    assert override == pytest.approx({"small": 0.5, "medium": 300 / 1800, "large": 600 / 1800})
    with pytest.raises(ValueError, match="zero"):
        mixing.dataset_weights({"a": 0}, 1.0)


@pytest.mark.parametrize(
    "alpha,overrides",
    [(1.0, {}), (0.5, {}), (1.0, {"small": 600.0, "medium": 600.0})],
    ids=["alpha1", "alpha0.5", "override"],
)
def test_observed_frequencies_match_weights(sized_builders, alpha, overrides):
    configs = [
        cfg.__class__(**{**cfg.__dict__, "weight": overrides.get(cfg.name)})
        for cfg in _image_configs()
    ]
    mix = MixingConfig(alpha=alpha, image_batch_size=50, seed=1, image_shuffle_buffer=64)
    dataset = mixing.train_dataset(configs, mix, MEAN, STD, builders=sized_builders)
    counts = _count_samples(dataset, list(SIZES), num_batches=60)
    expected = mixing.dataset_weights(SIZES, alpha, overrides)
    _assert_frequencies(counts, expected)


def test_groups_alternate_with_sample_share_matching_weights(data_dir, video_builder):
    videos = make_builder(data_dir, "video6", kind="video", num_frames=6, num_train=30)
    images = make_builder(data_dir, "image10", kind="image", num_train=10, num_classes=4)
    configs = [video_config(name="motion"), image_config(name="images")]
    mix = MixingConfig(video_batch_size=2, image_batch_size=6, seed=3, deterministic=True)
    builders = {"motion": videos, "images": images}
    dataset = mixing.train_dataset(configs, mix, MEAN, STD, builders=builders)
    assert dataset.element_spec[0].shape.as_list() == [None, None, 32, 32, 3]
    assert dataset.element_spec[1]["images"].shape.as_list() == [None, 4]
    steps = {"motion": 0, "images": 0}
    for frames, _labels, weights in dataset.take(240):
        name = "motion" if frames.shape[1] == 4 else "images"
        assert frames.shape[0] == (2 if name == "motion" else 6)
        np.testing.assert_array_equal(weights[name], 1.0)
        steps[name] += 1
    # weights 0.75 / 0.25 of samples -> steps p_g ~ W_g / B_g = 0.375 / 0.0417 -> 0.9 / 0.1
    _assert_frequencies(steps, {"motion": 0.9, "images": 0.1})
    # the expected share of samples, sum_g p_g B_g restricted to a group, is the group's weight
    groups = {("video", 4, 32): ["motion"], ("image", 32): ["images"]}
    batch_sizes = {("video", 4, 32): 2, ("image", 32): 6}
    p = mixing.group_step_weights({"motion": 0.75, "images": 0.25}, groups, batch_sizes)
    assert p[("video", 4, 32)] == pytest.approx(0.9)
    expected_samples = {key: p[key] * batch_sizes[key] for key in p}
    video_share = expected_samples[("video", 4, 32)] / sum(expected_samples.values())
    assert video_share == pytest.approx(0.75)
    first, second = (
        mixing.train_dataset(configs, mix, MEAN, STD, builders=builders).take(3) for _ in range(2)
    )
    for (a, _, _), (b, _, _) in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)  # deterministic given the seed


def test_train_stream_with_mixup_keeps_dataset_and_soft_labels(video_builder):
    cfg = video_config(mixup_alpha=0.8, cutmix_alpha=1.0, mix_batch_size=4, label_smoothing=0.1)
    stream = input_pipeline.train_stream(
        cfg, MEAN, STD, seed=0, dataset_index=2, builder=video_builder
    )
    for element in stream.take(8):
        assert element["frames"].shape == (4, 32, 32, 3)
        assert int(element["dataset_index"]) == 2
        np.testing.assert_allclose(np.sum(element["label"]), 1.0, rtol=1e-5)
        assert np.min(element["label"]) > 0  # smoothed (and mixed)


def test_eval_dataset_multi_view_every_example_once(video_builder):
    cfg = video_config(eval_clips=2, eval_crops=3)
    dataset = input_pipeline.eval_dataset(cfg, MEAN, STD, batch_size=3, builder=video_builder)
    batches = list(dataset)
    assert batches[0][0].shape == (3, 6, 4, 32, 32, 3)
    labels = np.concatenate([label.numpy() for _, label in batches])
    assert len(labels) == 4 and labels.dtype == np.int64


def test_each_epoch_is_built_from_its_seed_so_resuming_regenerates_nothing(data_dir):
    videos = make_builder(data_dir, "video6", kind="video", num_frames=6, num_train=30)
    images = make_builder(data_dir, "image10", kind="image", num_train=10, num_classes=4)
    configs = [video_config(name="motion"), image_config(name="images")]
    mix = MixingConfig(video_batch_size=2, image_batch_size=6, seed=3, deterministic=True)
    builders = {"motion": videos, "images": images}

    def batches(first_epoch, count):
        dataset = mixing.train_dataset(
            configs, mix, MEAN, STD, builders, steps_per_epoch=3, first_epoch=first_epoch
        )
        return [frames.numpy() for frames, _, _ in dataset.take(count)]

    uninterrupted = batches(0, 9)
    for a, b in zip(batches(2, 3), uninterrupted[6:], strict=True):
        np.testing.assert_array_equal(a, b)  # epoch 2 directly == epoch 2 after 0 and 1
    assert any(  # and epochs are not copies of each other
        a.shape != b.shape or not np.array_equal(a, b)
        for a, b in zip(uninterrupted[:3], uninterrupted[3:6], strict=True)
    )
    # An epoch no run could reach by skipping batches comes at once.
    assert len(batches(10**12, 1)) == 1


def _blue_levels(frames, mean=MEAN, std=STD):
    """Per-clip blue level in [0, 255] of normalized frames [N, T, H, W, 3] (flat colours)."""
    return frames[..., 2].mean(axis=(1, 2, 3)) * (255 * std[2]) + 255 * mean[2]


def test_cached_split_every_pass_is_a_permutation_of_the_split(image_builder):
    """Each pass over a cached split sees every example once, in a new order: the whole split is
    the shuffle buffer, whatever buffer the caller passes (1 would keep the stored order)."""
    cfg = image_config(cache="decoded")
    split = reader.cached_split(image_builder, "train", decoded=True)
    stored = [float(e["frames"][0, 0, 0, 2]) for e in split.examples]  # each image's blue level
    assert split.size == len(stored) == 8 and len(set(stored)) > 4
    assert split.frame_shape is not None and split.frame_shape[0] == 1  # one shape: batchable
    stored = sorted(stored)
    clips = input_pipeline.train_stream(
        cfg, MEAN, STD, seed=5, shuffle_buffer=1, builder=image_builder, cached=split
    )
    batches = input_pipeline.train_stream(  # batched in one pass (decoded frames of one shape)
        cfg, MEAN, STD, seed=5, shuffle_buffer=1, builder=image_builder, cached=split, batch_size=4
    )
    for frames in (
        np.stack([e["frames"].numpy() for e in clips.take(16)]),
        np.concatenate([e["frames"].numpy() for e in batches.take(4)]),
    ):
        for one_pass in (frames[:8], frames[8:]):
            # Each clip is named by the stored image nearest in blue level (a crop's mean may
            # drift a few levels from the stored pixel's): every image once per pass.
            levels = np.asarray(stored)
            nearest = [levels[np.argmin(np.abs(levels - b))] for b in _blue_levels(one_pass)]
            assert sorted(nearest) == stored
        assert not np.allclose(_blue_levels(frames[:8]), _blue_levels(frames[8:]), atol=3)


def test_decoded_cache_gives_the_clips_of_the_encoded_cache(video_builder):
    """Decoding every frame once, then cropping, is the transform of decoding the crop window."""
    cfg = video_config()  # the stream takes the cached split it is given

    def clips(decoded):
        split = reader.cached_split(video_builder, "train", decoded=decoded)
        assert (split.frame_shape is not None) == decoded  # JPEG strings are never batched
        stream = input_pipeline.train_stream(
            cfg, MEAN, STD, seed=2, builder=video_builder, cached=split
        )
        return [(e["frames"].numpy(), e["label"].numpy()) for e in stream.take(10)]

    for (a, label_a), (b, label_b) in zip(clips(False), clips(True), strict=True):
        np.testing.assert_array_equal(label_a, label_b)
        np.testing.assert_allclose(a, b, atol=2 / (255 * STD[0]))  # JPEG decoders: <= 2 levels


@pytest.mark.parametrize("cache", ["encoded", "none"])
def test_cached_datasets_are_read_once_for_all_epochs(tmp_path, cache):
    """With a cache, later epochs never touch the files (deleted here after the first batch);
    without one, each epoch reads them again (the control: the same deletion fails the run)."""
    videos = make_builder(tmp_path, "video6", kind="video", num_frames=6, num_train=30)
    images = make_builder(tmp_path, "image10", kind="image", num_train=10, num_classes=4)
    configs = [video_config(name="motion", cache=cache), image_config(name="images", cache=cache)]
    mix = MixingConfig(video_batch_size=2, image_batch_size=6, seed=3, deterministic=True)
    dataset = mixing.train_dataset(
        configs, mix, MEAN, STD, {"motion": videos, "images": images}, steps_per_epoch=3
    )
    batches = iter(dataset)
    next(batches)
    for path in tmp_path.rglob("*.tfrecord*"):
        path.unlink()
    if cache == "none":
        with pytest.raises(tf.errors.OpError):
            for _ in range(30):
                next(batches)
    else:
        assert all(next(batches)[0].shape[0] in (2, 6) for _ in range(30))


def test_unknown_cache_names_itself():
    with pytest.raises(ValueError, match=r"motion\.cache must be one of .*'memory'"):
        video_config(cache="memory").validate()
