"""Run by test_distributed_fit.py in a subprocess: 2 logical CPUs must be set before TF starts.

Usage: python distributed_fit_script.py DATA_DIR. Prints "OK <steps>" on success.
"""

import os
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from conftest import MEAN, STD, image_config, make_builder, video_config  # noqa: E402

from cover_tf.data import mixing  # noqa: E402
from cover_tf.data.dataset_config import MixingConfig  # noqa: E402


def tiny_model(num_classes):
    """Mean over (T, H, W) -> Dense -> one Dense head per dataset, outputs keyed by name."""
    frames = keras.Input([None, None, None, 3])
    pooled = keras.layers.GlobalAveragePooling3D()(frames)
    hidden = keras.layers.Dense(8, activation="relu")(pooled)
    heads = {name: keras.layers.Dense(k, name=name)(hidden) for name, k in num_classes.items()}
    return keras.Model(frames, heads)


def main(data_dir):
    builders = {
        "motion": make_builder(data_dir, "video16", kind="video", num_frames=16, num_train=8),
        "images": make_builder(data_dir, "image", kind="image", num_train=8, num_classes=5),
    }
    configs = [video_config(name="motion"), image_config(name="images")]
    mix = MixingConfig(video_batch_size=4, image_batch_size=8, seed=0)
    dataset = mixing.train_dataset(configs, mix, MEAN, STD, builders=builders)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    distributed = iter(strategy.experimental_distribute_dataset(dataset))
    for _ in range(4):
        frames, labels, weights = next(distributed)
        local = strategy.experimental_local_results(frames)
        assert len(local) == 2 and local[0].shape[0] in (2, 4), [t.shape for t in local]
        total = sum(
            tf.reduce_sum(w).numpy()
            for name in weights
            for w in strategy.experimental_local_results(weights[name])
        )
        assert total == local[0].shape[0] + local[1].shape[0], total
    with strategy.scope():
        model = tiny_model({"motion": 3, "images": 5})
        model.compile(
            optimizer="adam",
            loss={
                name: keras.losses.CategoricalCrossentropy(from_logits=True)
                for name in ("motion", "images")
            },
            jit_compile=False,
        )
    history = model.fit(dataset, epochs=1, steps_per_epoch=6, verbose=0)
    assert all(tf.math.is_finite(v).numpy() for v in history.history["loss"])
    print("OK", len(history.history["loss"]))


if __name__ == "__main__":
    main(sys.argv[1])
