"""Training / eval preprocessing, mixup / cutmix and the dataset config."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import MEAN, STD, image_config, video_config

from cover_tf.data import mixup_cutmix, preprocessing
from cover_tf.data.dataset_config import DatasetConfig, MixingConfig, RandAugmentConfig

SEED = tf.constant([3, 4], tf.int64)


def _jpeg(value, height=40, width=48):
    return tf.io.encode_jpeg(tf.fill([height, width, 3], tf.constant(value, tf.uint8))).numpy()


def _resolved(cfg, is_image=False, num_classes=3):
    return dataclasses.replace(cfg, is_image=is_image, num_classes=num_classes)


def _frame_numbers(frames):
    """Frame index t from the red channel 8 t + 4 of normalized frames [..., 3]."""
    red = (frames[..., 0] * STD[0] + MEAN[0]) * 255.0
    return np.round((np.mean(red, axis=(-1, -2)) - 4) / 8).astype(int)


def test_train_preprocess_decodes_only_sampled_jpegs():
    cfg = _resolved(video_config(num_frames=4, frame_stride=3))  # span 10 = video: start 0
    sampled = [0, 3, 6, 9]
    jpegs = [_jpeg(8 * t + 4) if t in sampled else b"not a jpeg" for t in range(10)]
    example = {"frames": tf.constant(jpegs), "label": tf.constant(2, tf.int64)}
    frames, label = preprocessing.train_preprocess(example, cfg, MEAN, STD, SEED)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == tf.float32
    np.testing.assert_array_equal(_frame_numbers(frames.numpy()), sampled)
    np.testing.assert_allclose(label, [0, 0, 1])
    jpegs[0] = b"not a jpeg"
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocessing.train_preprocess(
            {"frames": tf.constant(jpegs), "label": tf.constant(2)}, cfg, MEAN, STD, SEED
        )


def test_eval_preprocess_decodes_only_sampled_jpegs():
    cfg = _resolved(video_config(num_frames=4, frame_stride=2, eval_clips=2))
    indices = preprocessing.eval_frame_indices(30, cfg).numpy()
    jpegs = [_jpeg(8 * t + 4) if t in indices else b"x" for t in range(30)]
    views = preprocessing.eval_preprocess(tf.constant(jpegs), cfg, MEAN, STD).numpy()
    assert views.shape == (6, 4, 32, 32, 3)
    for view in range(6):
        np.testing.assert_array_equal(_frame_numbers(views[view]), indices[view // 3])


@pytest.mark.parametrize("clips,crops", [(1, 3), (2, 1), (3, 3)])
@pytest.mark.parametrize("num_frames_in,height,width", [(1, 37, 53), (5, 64, 40), (40, 32, 32)])
def test_eval_preprocess_shape_for_any_input(clips, crops, num_frames_in, height, width):
    cfg = _resolved(video_config(eval_clips=clips, eval_crops=crops))
    frames = tf.random.stateless_uniform(
        [num_frames_in, height, width, 3], [1, 2], 0, 255, tf.int32
    )
    views = preprocessing.eval_preprocess(tf.cast(frames, tf.uint8), cfg, MEAN, STD)
    assert views.shape == (clips * crops, 4, 32, 32, 3)


def test_eval_preprocess_image_variants_and_inside_dataset_map():
    cfg = _resolved(image_config(eval_crops=3), is_image=True)
    image = tf.cast(tf.fill([40, 60, 3], 100), tf.uint8)
    assert preprocessing.eval_preprocess(image, cfg, MEAN, STD).shape == (3, 1, 32, 32, 3)
    assert preprocessing.eval_preprocess(_jpeg(100), cfg, MEAN, STD).shape == (3, 1, 32, 32, 3)
    dataset = tf.data.Dataset.from_tensors(tf.stack([_jpeg(100)] * 7)).map(
        lambda jpegs: preprocessing.eval_preprocess(jpegs, _resolved(video_config()), MEAN, STD)
    )
    assert dataset.element_spec.shape == (3, 4, 32, 32, 3)
    np.testing.assert_allclose(next(iter(dataset)), (100 / 255 - 0.45) / 0.225, atol=0.03)


def _gradient_video():
    """uint8 [6, 40, 48, 3], brightness increasing left to right."""
    columns = np.linspace(0, 250, 48).astype(np.uint8)
    return tf.constant(np.broadcast_to(columns[None, None, :, None], (6, 40, 48, 3)))


def _is_flipped(frames):
    return bool(np.mean(frames[:, :, 0]) > np.mean(frames[:, :, -1]))


@pytest.mark.parametrize("flip", [False, True])
def test_flip_option(flip):
    cfg = _resolved(video_config(flip=flip, frame_stride=1))
    example = {"frames": _gradient_video(), "label": tf.constant(0)}
    flipped = {
        _is_flipped(preprocessing.train_preprocess(example, cfg, MEAN, STD, [i, 1])[0].numpy())
        for i in range(16)
    }
    assert flipped == ({False, True} if flip else {False})


def test_train_preprocess_is_deterministic_given_seed_and_varies_with_it():
    cfg = _resolved(video_config(frame_stride=1))
    example = {"frames": tf.cast(_gradient_video(), tf.uint8) + 0, "label": tf.constant(0)}
    a = preprocessing.train_preprocess(example, cfg, MEAN, STD, [5, 5])[0]
    b = preprocessing.train_preprocess(example, cfg, MEAN, STD, [5, 5])[0]
    np.testing.assert_array_equal(a, b)
    others = [preprocessing.train_preprocess(example, cfg, MEAN, STD, [i, 9])[0] for i in range(4)]
    assert any(not np.array_equal(a, other) for other in others)


def test_randaugment_applies_the_same_ops_to_every_frame():
    cfg = _resolved(video_config(frame_stride=1, randaugment=RandAugmentConfig(2, 15.0, 0.0)))
    still = tf.constant(np.repeat(_gradient_video().numpy()[:1], 6, axis=0))
    example = {"frames": still, "label": tf.constant(1)}
    tf.random.set_seed(0)
    for i in range(4):
        frames = preprocessing.train_preprocess(example, cfg, MEAN, STD, [i, 2])[0].numpy()
        assert frames.shape == (4, 32, 32, 3)
        for t in range(1, 4):  # a still video stays still (cutout may differ in time: allow it)
            assert np.mean(np.abs(frames[t] - frames[0]) > 1e-3) < 0.5


def test_label_smoothing():
    cfg = _resolved(image_config(label_smoothing=0.3), is_image=True, num_classes=3)
    example = {"frames": tf.stack([_jpeg(10)]), "label": tf.constant(1, tf.int64)}
    frames, label = preprocessing.train_preprocess(example, cfg, MEAN, STD, SEED)
    assert frames.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(label, [0.1, 0.8, 0.1], rtol=1e-6)


def _two_class_batch():
    frames = tf.concat([tf.zeros([4, 2, 8, 8, 3]), tf.ones([4, 2, 8, 8, 3])], 0)
    labels = tf.one_hot([0] * 4 + [1] * 4, 2)
    return frames, labels


@pytest.mark.parametrize("mixup_alpha,cutmix_alpha", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_mixup_cutmix_labels_match_pixel_mass(mixup_alpha, cutmix_alpha):
    frames, labels = _two_class_batch()
    for i in range(5):
        mixed, soft = mixup_cutmix.mixup_or_cutmix(
            frames, labels, mixup_alpha, cutmix_alpha, [i, 0]
        )
        np.testing.assert_allclose(tf.reduce_sum(soft, -1), 1.0, rtol=1e-5)
        # class 1 images are all ones: the share of class 1 equals the mean pixel value
        np.testing.assert_allclose(tf.reduce_mean(mixed, [1, 2, 3, 4]), soft[:, 1], atol=1e-5)
        same_all_frames = mixed[:, :1] - mixed[:, 1:]
        np.testing.assert_allclose(same_all_frames, 0.0)
    unchanged = mixup_cutmix.mixup_or_cutmix(frames, labels, 0.0, 0.0, [0, 0])
    np.testing.assert_array_equal(unchanged[1], labels)


def test_config_validate_names_field_and_allowed_values():
    video_config().validate()
    MixingConfig().validate()
    with pytest.raises(
        ValueError, match=r"motion.sampling must be one of \('strided', 'segment'\)"
    ):
        video_config(sampling="dense").validate()
    with pytest.raises(ValueError, match=r"eval_crops must be one of \(1, 3\)"):
        video_config(eval_crops=2).validate()
    with pytest.raises(ValueError, match="train_short_side_range"):
        video_config(train_short_side_range=(16, 48)).validate()
    with pytest.raises(ValueError, match="mixing.alpha"):
        MixingConfig(alpha=-1).validate()
    with pytest.raises(ValueError, match="name"):
        DatasetConfig().validate()
    with pytest.raises(ValueError, match="randaugment.magnitude"):
        video_config(randaugment=RandAugmentConfig(magnitude=50)).validate()


def test_batch_transform_is_the_clip_transform():
    """Where no choice is random (every frame used, the whole frame as the window, no flip),
    the one-pass batch transform gives each clip what the per-clip transform gives it; where
    choices are random, each clip of the batch draws its own."""
    fixed = _resolved(
        video_config(num_frames=6, frame_stride=1, train_short_side_range=(32, 32), flip=False)
    )
    videos = tf.constant(
        np.random.default_rng(0).integers(0, 256, (3, 6, 40, 40, 3)).astype(np.uint8)
    )
    labels = tf.constant([0, 2, 1], tf.int64)
    frames, smoothed = preprocessing.train_preprocess_batch(
        {"frames": videos, "label": labels}, fixed, MEAN, STD, SEED
    )
    assert frames.shape == (3, 6, 32, 32, 3)
    for b in range(3):
        clip, label = preprocessing.train_preprocess(
            {"frames": videos[b], "label": labels[b]}, fixed, MEAN, STD, [b, 0]
        )
        np.testing.assert_allclose(frames[b], clip, atol=1e-4)
        np.testing.assert_allclose(smoothed[b], label)
    still = tf.repeat(tf.constant(_gradient_video())[None], 16, axis=0)
    jittered, _ = preprocessing.train_preprocess_batch(
        {"frames": still, "label": tf.zeros([16], tf.int64)},
        _resolved(video_config(frame_stride=1)),
        MEAN,
        STD,
        SEED,
    )
    assert len({_is_flipped(clip) for clip in jittered.numpy()}) == 2
    assert len({float(clip.mean()) for clip in jittered.numpy()}) > 4  # windows differ


def test_batch_transform_takes_jpegs_and_randaugment_one_clip_at_a_time():
    jpegs = tf.constant([[_jpeg(10), _jpeg(20)], [_jpeg(30), _jpeg(40)]])
    cfg = _resolved(video_config(num_frames=2, frame_stride=1))
    with pytest.raises(ValueError, match="motion: JPEG frames and RandAugment take a batch of one"):
        preprocessing.train_preprocess_batch(
            {"frames": jpegs, "label": tf.constant([0, 1], tf.int64)}, cfg, MEAN, STD, SEED
        )
    frames, _ = preprocessing.train_preprocess_batch(
        {"frames": jpegs[:1], "label": tf.constant([1], tf.int64)}, cfg, MEAN, STD, SEED
    )
    assert frames.shape == (1, 2, 32, 32, 3)
