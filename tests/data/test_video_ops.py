"""Video ops: values and shapes, eagerly and inside tf.data.Dataset.map."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cover_tf.data import video_ops


def _seed(i):
    return tf.constant([i, 7], tf.int64)


def _column_frames(num_frames=2, height=4, width=10):
    """uint8 [T, H, W, 1] whose value is the column index."""
    columns = np.broadcast_to(np.arange(width, dtype=np.uint8), (num_frames, height, width))
    return tf.constant(columns[..., None])


@pytest.mark.parametrize("num_available", [5, 17, 64, 200])
def test_strided_indices_are_stride_apart_and_inside(num_available):
    for i in range(20):
        indices = video_ops.sample_strided_indices(num_available, 8, 4, _seed(i)).numpy()
        assert indices.shape == (8,)
        assert indices.min() >= 0 and indices.max() < num_available
        if num_available >= 29:
            np.testing.assert_array_equal(np.diff(indices), 4)


def test_strided_indices_cover_every_start_and_clamp_or_wrap_short_videos():
    starts = {int(video_ops.sample_strided_indices(12, 2, 3, _seed(i))[0]) for i in range(200)}
    assert starts == set(range(9))  # 12 - ((2 - 1) * 3 + 1) + 1 valid starts
    clamped = video_ops.sample_strided_indices(5, 4, 2, _seed(0), boundary="clamp").numpy()
    np.testing.assert_array_equal(clamped, [0, 2, 4, 4])
    wrapped = video_ops.sample_strided_indices(5, 4, 2, _seed(0), boundary="wrap").numpy()
    np.testing.assert_array_equal(wrapped, [0, 2, 4, 1])
    with pytest.raises(ValueError, match="clamp"):
        video_ops.sample_strided_indices(5, 4, 2, _seed(0), boundary="reflect")


def test_segment_indices_one_per_segment():
    for i in range(20):
        indices = video_ops.sample_segment_indices(40, 8, True, _seed(i)).numpy()
        np.testing.assert_array_equal(indices // 5, np.arange(8))
    centres = video_ops.sample_segment_indices(40, 8, False).numpy()
    np.testing.assert_array_equal(centres, np.arange(8) * 5 + 2)
    short = video_ops.sample_segment_indices(3, 8, True, _seed(1)).numpy()
    assert short.min() >= 0 and short.max() <= 2 and np.all(np.diff(short) >= 0)


def test_eval_clip_indices_are_deterministic_and_evenly_spaced():
    clips = video_ops.sample_eval_clip_indices(100, 4, 2, 3).numpy()
    assert clips.shape == (3, 4)
    np.testing.assert_array_equal(np.diff(clips, axis=1), 2)
    assert np.ptp(np.diff(clips[:, 0])) <= 1  # evenly spaced starts (up to rounding)
    one = video_ops.sample_eval_clip_indices(100, 4, 2, 1).numpy()
    np.testing.assert_array_equal(one, [[47, 49, 51, 53]])  # centred: max start 93 -> 46.5
    np.testing.assert_array_equal(one, video_ops.sample_eval_clip_indices(100, 4, 2, 1).numpy())
    segments = video_ops.sample_eval_clip_indices(40, 8, 1, 1, sampling="segment").numpy()
    np.testing.assert_array_equal(segments[0], np.arange(8) * 5 + 2)
    with pytest.raises(ValueError, match="segment"):
        video_ops.sample_eval_clip_indices(40, 8, 1, 1, sampling="dense")


def test_three_crops_left_centre_right_and_top_centre_bottom():
    crops = video_ops.three_crops(_column_frames(width=10), 4).numpy()
    assert crops.shape == (3, 2, 4, 4, 1)
    assert [int(c[0, 0, 0, 0]) for c in crops] == [0, 3, 6]
    portrait = tf.transpose(_column_frames(height=4, width=10), [0, 2, 1, 3])  # value = row
    crops = video_ops.three_crops(portrait, 4).numpy()
    assert [int(c[0, 0, 0, 0]) for c in crops] == [0, 3, 6]


def test_center_crop_and_random_crop_same_window_for_all_frames():
    frames = tf.random.stateless_uniform([3, 20, 30, 3], _seed(0), 0, 255, tf.int32)
    centre = video_ops.center_crop(frames, 10)
    np.testing.assert_array_equal(centre, frames[:, 5:15, 10:20])
    for i in range(5):
        crop = video_ops.random_crop(frames, 10, _seed(i)).numpy()
        assert crop.shape == (3, 10, 10, 3)
        found = [
            (y, x)
            for y in range(11)
            for x in range(21)
            if np.array_equal(crop, frames.numpy()[:, y : y + 10, x : x + 10])
        ]
        assert len(found) == 1


def test_flip_flips_all_frames_together_both_ways():
    frames = _column_frames(num_frames=3)[None]  # one clip, [1, T, 4, 10, 1]
    window = tf.constant([[0, 0, 4, 10]])
    outcomes = set()
    for i in range(20):
        flips = video_ops.random_flips(_seed(i), [1])
        flipped = video_ops.resize_windows(frames, window, 10, flips)[0].numpy()
        first = flipped[:, 0, 0, 0]
        assert len(set(first)) == 1  # same decision for every frame
        assert bool(flips[0]) == (first[0] == 9)
        outcomes.add(int(round(first[0])))
    assert outcomes == {0, 9}


def test_batched_draws_give_each_clip_its_own_choice():
    """One seed per batch: every clip draws its own start, window and flip, all in range."""
    indices = video_ops.sample_strided_indices(20, 4, 2, _seed(1), batch=[64]).numpy()
    assert indices.shape == (64, 4) and len(set(indices[:, 0])) > 5
    np.testing.assert_array_equal(np.diff(indices, axis=1), 2)
    assert indices.min() >= 0 and indices.max() < 20
    segments = video_ops.sample_segment_indices(40, 8, True, _seed(2), batch=[16]).numpy()
    assert segments.shape == (16, 8) and np.all((segments // 5) == np.arange(8))
    windows = video_ops.random_scale_crop_window(40, 48, 32, (32, 40), _seed(3), [64]).numpy()
    y, x, h, w = windows.T
    assert np.all(h == w) and np.all((32 <= h) & (h <= 40)) and len(set(h)) > 4
    assert np.all((0 <= y) & (y <= 40 - h)) and np.all((0 <= x) & (x <= 48 - w))
    flips = video_ops.random_flips(_seed(4), [64]).numpy()
    assert 10 < flips.sum() < 54


@pytest.mark.parametrize("flip", [False, True])
def test_resize_windows_equals_crop_then_resize(flip):
    """Windows at least the output size: each clip's window cropped and resized by
    `tf.image.resize` (bilinear, half-pixel centres), flipped where asked."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 2, 40, 48, 3)).astype(np.uint8)
    windows = np.array([[0, 0, 40, 40], [3, 5, 33, 33], [8, 10, 32, 32]], np.int32)
    flips = np.array([flip, False, flip])
    out = video_ops.resize_windows(tf.constant(frames), tf.constant(windows), 32, flips).numpy()
    assert out.shape == (3, 2, 32, 32, 3)
    for b, ((y, x, h, w), flipped) in enumerate(zip(windows, flips, strict=True)):
        crop = frames[b, :, y : y + h, x : x + w].astype(np.float32)
        expected = tf.image.resize(crop, [32, 32]).numpy()
        expected = expected[:, :, ::-1] if flipped else expected
        np.testing.assert_allclose(out[b], expected, atol=1e-3)


def test_resize_windows_upscales_corner_to_corner():
    """A window smaller than the output (an upscale) maps its corner pixels to the output's."""
    frames = tf.constant(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4, 1))
    out = video_ops.resize_windows(frames, tf.constant([[1, 1, 2, 2]]), 3).numpy()[0, 0, ..., 0]
    np.testing.assert_allclose(out, [[5, 5.5, 6], [7, 7.5, 8], [9, 9.5, 10]], atol=1e-5)


_MAPPED_RESIZE = """
import numpy as np, tensorflow as tf
from cover_tf.data import video_ops
clips = tf.data.Dataset.from_generator(
    lambda: (np.zeros([4, 40, 40, 3], np.uint8) for _ in range(64)),
    output_signature=tf.TensorSpec([4, None, None, 3], tf.uint8),
).batch(32, drop_remainder=True)
windows = tf.constant([[0, 0, 36, 36]] * 32)
for batch in clips.map(lambda frames: video_ops.resize_windows(frames, windows, 16)):
    assert batch.shape == (32, 4, 16, 16, 3)
"""


def test_resize_windows_in_a_dataset_map_logs_no_cost_warning():
    """A batched split of unknown frame size, as `make demo` maps it: CropAndResize must get a
    static box count, else grappler's cost model logs "Error in PredictCost()" with the whole
    op (three such lines in `make demo`'s output)."""
    done = subprocess.run(
        [sys.executable, "-c", _MAPPED_RESIZE], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "PredictCost" not in done.stderr


def test_resize_short_side_keeps_aspect():
    frames = tf.zeros([2, 30, 45, 3], tf.uint8)
    assert video_ops.resize_short_side(frames, 20).shape == (2, 20, 30, 3)
    assert video_ops.resize_short_side(tf.zeros([1, 45, 30, 3]), 20).shape == (1, 30, 20, 3)


def test_scale_crop_window_inside_frame_with_jittered_side():
    sides = set()
    for i in range(50):
        y, x, h, w = video_ops.random_scale_crop_window(256, 340, 224, (256, 320), _seed(i)).numpy()
        assert h == w and 179 <= h <= 224
        assert 0 <= y <= 256 - h and 0 <= x <= 340 - w
        sides.add(int(h))
    assert len(sides) > 5


def test_normalize_uses_given_mean_and_std():
    pixels = tf.constant([[0, 255, 51]], tf.uint8)
    out = video_ops.normalize(pixels, (0.5, 0.5, 0.2), (0.5, 0.25, 0.1)).numpy()
    np.testing.assert_allclose(out, [[-1.0, 2.0, 0.0]], atol=1e-6)


def test_ops_run_inside_dataset_map_with_static_shapes():
    jpeg = tf.io.encode_jpeg(tf.fill([24, 36, 3], tf.constant(100, tf.uint8)))
    videos = tf.data.Dataset.from_tensors(tf.stack([jpeg] * 10)).repeat(3)

    def clip(jpegs):
        indices = video_ops.sample_strided_indices(tf.shape(jpegs)[0], 4, 2, _seed(3))
        jpegs = video_ops.gather_frames(jpegs, indices)
        height, width = video_ops.jpeg_size(jpegs[0])
        window = video_ops.random_scale_crop_window(height, width, 16, (24, 30), _seed(4))
        frames = video_ops.decode_and_crop_frames(jpegs, window)[None]
        whole = tf.stack([0, 0, window[2], window[3]])[None]
        frames = video_ops.resize_windows(frames, whole, 16, video_ops.random_flips(_seed(5), [1]))
        frames = frames[0]
        full = video_ops.decode_frames(jpegs)
        crops = video_ops.three_crops(video_ops.resize_short_side(full, 16), 16)
        return video_ops.normalize(frames, (0.5,) * 3, (0.5,) * 3), crops

    dataset = videos.map(clip)
    assert dataset.element_spec[0].shape == (4, 16, 16, 3)
    assert dataset.element_spec[1].shape == (3, 4, 16, 16, 3)
    for frames, crops in dataset:
        np.testing.assert_allclose(frames, (100 / 255 - 0.5) / 0.5, atol=0.03)
        assert crops.shape == (3, 4, 16, 16, 3)


def test_decode_and_crop_frames_unrolled_and_looped_paths_agree():
    rng = np.random.default_rng(0)
    jpegs = tf.stack(
        [tf.io.encode_jpeg(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)) for _ in range(5)]
    )
    window = tf.constant([3, 5, 20, 24])
    unrolled = video_ops.decode_and_crop_frames(jpegs, window)  # length 5 known: one op per frame
    looped = tf.function(
        video_ops.decode_and_crop_frames,
        input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([4], tf.int32)],
    )(jpegs, window)  # unknown length: the map_fn loop
    assert unrolled.shape == looped.shape == (5, 20, 24, 3)
    np.testing.assert_array_equal(unrolled, looped)
    for i in (0, 4):  # each frame is its own JPEG's window, in order
        full = tf.io.decode_jpeg(jpegs[i], channels=3, dct_method="INTEGER_FAST")
        np.testing.assert_array_equal(unrolled[i], full[3:23, 5:29])
