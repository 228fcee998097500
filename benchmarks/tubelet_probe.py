"""Does the model learn the motion set, and with which patch embedding? A direct probe.

Renders cover_synthetic's motion clips in memory (the renderer of the TFDS builder, 8 frames at
40 x 40, random 32 x 32 crop in training, centre crop at test), builds the demo's backbone
(width 96, 4 layers, 8 px patches, sinusoidal temporal init) with one head, trains it alone
with AdamW and warmup + cosine, and prints the test top-1 after each fifth of the steps as one
JSON line. `--input`:
  frames      TimeSformer's frame-wise patches (3 channels)
  difference  frame t plus f[t + 1] - f[t] as 3 more channels (the last difference 0): what
              `model.tubelet_size: 2` computes inside `PatchEmbedding`
  pair        frames t and t + 1 as 6 channels (the last frame's partner zero): a plain
              2-frame tubelet, the same family of linear maps as `difference`

    python benchmarks/tubelet_probe.py --input difference --steps 1500
"""

import argparse
import json
import time

import cover_tf  # noqa: F401  (before TensorFlow: its oneDNN choice, cover_tf.cpu)

# isort: split
import keras
import numpy as np
import tensorflow as tf

from cover_tf.builders import synthetic_render
from cover_tf.models import TimeSformerBackbone


def render(count, first_seed):
    classes = synthetic_render.MOTION_CLASSES
    clips = [
        synthetic_render.render_motion_clip(first_seed + i, classes[i % len(classes)], num_frames=8)
        for i in range(count)
    ]
    return np.stack(clips), np.arange(count) % len(classes)


def prepare(clip, training, kind):
    clip = tf.cast(clip, tf.float32) / 255.0
    if training:
        offset = tf.random.uniform([2], 0, 9, tf.int32)
        clip = clip[:, offset[0] : offset[0] + 32, offset[1] : offset[1] + 32]
    else:
        clip = clip[:, 4:36, 4:36]
    clip = (clip - 0.45) / 0.225
    following = tf.concat([clip[1:], tf.zeros_like(clip[:1])], 0)
    if kind == "pair":
        return tf.concat([clip, following], -1)
    if kind == "difference":
        difference = tf.concat([clip[1:] - clip[:-1], tf.zeros_like(clip[:1])], 0)
        return tf.concat([clip, difference], -1)
    return clip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", choices=("frames", "difference", "pair"), default="difference")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--train-clips", type=int, default=3840)
    parser.add_argument("--test-clips", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train_x, train_y = render(args.train_clips, 0)
    test_x, test_y = render(args.test_clips, 10**6)
    train = (
        tf.data.Dataset.from_tensor_slices((train_x, train_y))
        .shuffle(4000, seed=args.seed)
        .repeat()
        .map(lambda x, y: (prepare(x, True, args.input), y))
        .batch(32)
        .prefetch(4)
    )
    test = (
        tf.data.Dataset.from_tensor_slices((test_x, test_y))
        .map(lambda x, y: (prepare(x, False, args.input), y))
        .batch(100)
    )
    keras.utils.set_random_seed(args.seed)
    backbone = TimeSformerBackbone(
        hidden_size=96, num_layers=4, num_heads=4, patch_size=8, num_frames=8, image_size=32,
        drop_path_rate=0.1, temporal_init="sinusoidal",
    )  # fmt: skip
    inputs = keras.Input((8, 32, 32, 3 if args.input == "frames" else 6))
    model = keras.Model(inputs, keras.layers.Dense(8)(backbone(inputs)))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, args.steps - 100, warmup_target=1e-3, warmup_steps=100
    )
    model.compile(
        keras.optimizers.AdamW(schedule, weight_decay=0.05, clipnorm=1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    start = time.perf_counter()
    history = model.fit(
        train, steps_per_epoch=args.steps // 5, epochs=5, validation_data=test, verbose=0
    )
    print(json.dumps({
        "input": args.input, "steps": args.steps, "seed": args.seed,
        "train_clips": args.train_clips, "test_clips": args.test_clips,
        "test_top1_per_fifth": [round(v, 3) for v in history.history["val_accuracy"]],
        "train_top1_per_fifth": [round(v, 3) for v in history.history["accuracy"]],
        "train_s": round(time.perf_counter() - start, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
