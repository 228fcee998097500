"""Input-pipeline throughput: clips/s of the full training pipeline (read, decode the sampled JPEGs,
augment, mix, batch), one JSON line per measured setting.

Settings:
  demo: the embedded demo's shapes: videos of 16 frames stored at 40x40, 8x32 crops (stride 2),
        mixed with 40x40 images (1x32 crops).
  k400_224: Kinetics-like: videos of 32 frames stored at 256x340 (short side 256), 8x224 crops
        (stride 4), scale jitter [256, 320], flip. Target >= 30 clips/s per core.
Each setting also runs ablations: full-frame decode then crop (instead of decoding only the crop
window) and TF's default DCT (instead of INTEGER_FAST).

  python benchmarks/input_pipeline.py [--data_dir /tmp/cover_tf_bench] [--settings demo k400_224]
      [--out runs/input_pipeline.jsonl] [--results-dir benchmarks/results]

JSON lines: first the machine (CPU model, ISA flags, cores, versions, date, commit), then one
`input_pipeline` line per setting, variant and `--num_parallel_calls` value.

The synthetic data is a local TFDS builder with the builders' feature schema, prepared once in
--data_dir. Frames are smooth random patterns plus noise, stored as
quality-90 JPEGs like cover_tf's builders (~25 KB at 256x340; "jpeg_bytes_per_frame" is reported).
"""

import argparse
import dataclasses
import functools
import json
import os
import platform
import sys
import time

import cover_tf  # noqa: F401  (before TensorFlow: its oneDNN choice, cover_tf.cpu)

# isort: split
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from cover_tf.cpu import cpu_flags
from cover_tf.data import mixing, video_ops
from cover_tf.data.dataset_config import DatasetConfig, MixingConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import provenance  # noqa: E402

MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)


@dataclasses.dataclass
class BenchFramesConfig(tfds.core.BuilderConfig):
    kind: str = "video"
    num_train: int = 64
    num_frames: int = 32
    height: int = 256
    width: int = 340
    num_classes: int = 10


class BenchFrames(tfds.core.GeneratorBasedBuilder):
    """Synthetic JPEG videos / images with the feature schema of cover_tf's builders."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [BenchFramesConfig(name="default")]

    def _info(self):
        config = self.builder_config
        features = {"label": tfds.features.ClassLabel(num_classes=config.num_classes)}
        features["id"] = tfds.features.Text()
        if config.kind == "video":
            features["video"] = tfds.features.Video(
                shape=(None, None, None, 3), encoding_format="jpeg"
            )
            features["fps"] = tfds.features.Scalar(dtype=np.float32)
        elif config.kind == "image":
            features["image"] = tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg")
        else:
            raise ValueError(f"kind must be one of ('video', 'image'), got {config.kind!r}")
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        config = self.builder_config
        rng = np.random.default_rng(0)
        for i in range(config.num_train):
            coarse = rng.uniform(0, 255, (config.num_frames, 12, 16, 3)).astype(np.float32)
            smooth = tf.image.resize(coarse, [config.height, config.width]).numpy()
            noise = rng.normal(0, 4, smooth.shape[1:]).astype(np.float32)
            frames = np.clip(smooth + noise, 0, 255).astype(np.uint8)
            jpegs = [tf.io.encode_jpeg(frame, quality=90).numpy() for frame in frames]
            example = {"label": i % config.num_classes, "id": str(i)}
            if config.kind == "video":
                example.update(video=jpegs, fps=25.0)
            else:
                example.update(image=jpegs[0])
            yield str(i), example


def prepared(data_dir, name, **kwargs):
    builder = BenchFrames(config=BenchFramesConfig(name=name, **kwargs), data_dir=data_dir)
    builder.download_and_prepare(file_format="tfrecord")
    return builder


def setting_datasets(setting, data_dir):
    """([DatasetConfig], {name: builder}, MixingConfig kwargs) of a benchmark setting."""
    if setting == "demo":
        videos = prepared(
            data_dir, "demo_video_q90", num_train=64, num_frames=16, height=40, width=40
        )
        images = prepared(
            data_dir,
            "demo_image_q90",
            kind="image",
            num_train=256,
            num_frames=1,
            height=40,
            width=40,
        )
        small = dict(crop_size=32, train_short_side_range=(32, 40), eval_short_side=32)
        configs = [
            DatasetConfig(name="video", builder="bench", num_frames=8, frame_stride=2, **small),
            DatasetConfig(name="image", builder="bench", **small),
        ]
        return configs, {"video": videos, "image": images}, dict(video_batch_size=16)
    elif setting == "k400_224":
        videos = prepared(data_dir, "k400_like_q90", num_train=64, num_frames=32)
        configs = [DatasetConfig(name="k400", builder="bench", num_frames=8, frame_stride=4)]
        return configs, {"k400": videos}, dict(video_batch_size=8)
    else:
        raise ValueError(f"setting must be one of ('demo', 'k400_224'), got {setting!r}")


def decode_full_then_crop(jpegs, window, dct_method="INTEGER_FAST"):
    """Ablation of decode_and_crop_frames: decode every pixel, then crop."""
    return video_ops.crop_window(video_ops.decode_frames(jpegs, dct_method), window)


def measure(dataset, warmup_batches, batches):
    """(clips, images, seconds) over `batches` batches after `warmup_batches`."""
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    clips = images = 0
    start = time.perf_counter()
    for _ in range(batches):
        frames, _, _ = next(iterator)
        if frames.shape[1] == 1:
            images += frames.shape[0]
        else:
            clips += frames.shape[0]
    return clips, images, time.perf_counter() - start


def run(setting, variant, data_dir, num_parallel_calls, warmup_batches, batches):
    configs, builders, mix_kwargs = setting_datasets(setting, data_dir)
    original = video_ops.decode_and_crop_frames
    if variant == "crop_window_decode":
        pass
    elif variant == "full_decode":
        video_ops.decode_and_crop_frames = decode_full_then_crop
    elif variant == "default_dct":
        video_ops.decode_and_crop_frames = functools.partial(original, dct_method="")
    else:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    try:
        mix = MixingConfig(num_parallel_calls=num_parallel_calls, seed=0, **mix_kwargs)
        dataset = mixing.train_dataset(configs, mix, MEAN, STD, builders=builders)
        clips, images, elapsed = measure(dataset, warmup_batches, batches)
    finally:
        video_ops.decode_and_crop_frames = original
    cores = len(os.sched_getaffinity(0))
    first = next(iter(builders.values()))
    key = "video" if "video" in first.info.features else "image"
    sample = next(iter(first.as_dataset(split="train", decoders={key: tfds.decode.SkipDecoding()})))
    jpeg_bytes = int(np.mean([len(j) for j in np.atleast_1d(sample[key].numpy())]))
    return {
        "kind": "input_pipeline",
        "setting": setting,
        "variant": variant,
        "config": [dataclasses.asdict(cfg) for cfg in configs],
        "mixing": dataclasses.asdict(mix),
        "num_parallel_calls": "AUTOTUNE" if num_parallel_calls == -1 else num_parallel_calls,
        "cores": cores,
        "jpeg_bytes_per_frame": jpeg_bytes,
        "batches": batches,
        "clips": clips,
        "images": images,
        "elapsed": round(elapsed, 3),
        "clips_per_s": round(clips / elapsed, 2),
        "clips_per_s_per_core": round(clips / elapsed / cores, 2),
        "images_per_s": round(images / elapsed, 2),
    }


VARIANTS = ("crop_window_decode", "full_decode", "default_dct")


def machine_line():
    """Where the pipeline ran: CPU model, ISA flags, cores, versions, date and commit (no matmul
    peaks: the pipeline runs none)."""
    model, flags = cpu_flags()
    return {
        "kind": "machine", "benchmark": "input_pipeline",
        "machine": provenance.machine_name(model, flags), "date": provenance.today(),
        **provenance.git_commit(), "command": provenance.command(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__, "tensorflow_datasets": tfds.__version__,
        "cpu_model": model, "cores": os.cpu_count(), "isa": provenance.isa_flags(flags),
    }  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="/tmp/cover_tf_bench")
    parser.add_argument("--settings", nargs="+", default=["demo", "k400_224"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--num_parallel_calls", nargs="+", type=int, default=[-1])
    parser.add_argument("--warmup_batches", type=int, default=10)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--out", default=None, help="also append the JSON lines to this file")
    parser.add_argument(
        "--results-dir", help="also append the lines to DIR/input_pipeline_<machine>_<date>.jsonl"
    )
    args = parser.parse_args()
    lines = []

    def emit(record):
        lines.append(record)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)

    emit(machine_line())
    for setting in args.settings:
        for variant in args.variants:
            for calls in args.num_parallel_calls:
                emit(run(setting, variant, args.data_dir, calls, args.warmup_batches, args.batches))
    if args.results_dir:
        path = provenance.save_lines(lines, args.results_dir, "input_pipeline_")
        print(f"[input_pipeline] results appended to {path}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
