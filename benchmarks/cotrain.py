"""The co-training study on the embedded benchmark: does CoVeR's co-training help here?

Trains the demo model (configs/demo.yaml) in four settings, at an equal number of VIDEO steps
(steps that carry a batch of video clips):
  appearance   the appearance videos alone
  motion       the motion videos alone
  videos       appearance + motion co-trained (two heads)
  cover        appearance + motion + images co-trained (three heads: CoVeR)
For `cover`, image batches come on top: the run's total steps are the video steps divided by the
video group's step probability (the mixing's formula), so the video steps stay equal in
expectation. Each setting evaluates on the held-out test splits; JSON lines out, and a markdown
table with `--markdown FILE`.

    python benchmarks/cotrain.py [--video-steps 600] [--workdir runs/cotrain] [--markdown FILE]
"""

import argparse
import json
import math
import pathlib
import sys
import time

from cover_tf.config import load_config
from cover_tf.data import mixing
from cover_tf.training import loop

REPO = pathlib.Path(__file__).resolve().parents[1]
SETTINGS = {
    "appearance": ("appearance",),
    "motion": ("motion",),
    "videos": ("appearance", "motion"),
    "cover": ("appearance", "motion", "images"),
}


def video_step_probability(config, sizes):
    """Expected fraction of steps that carry a video batch, from the mixing formula."""
    weights = mixing.dataset_weights(
        sizes, config.mixing.alpha, {d.name: d.weight for d in config.datasets}
    )
    groups, batch_sizes = {}, {}
    for dataset in config.datasets:
        key = ("image",) if dataset.is_image else ("video",)
        groups.setdefault(key, []).append(dataset.name)
        batch_sizes[key] = (
            config.mixing.image_batch_size if dataset.is_image else config.mixing.video_batch_size
        )
    return mixing.group_step_weights(weights, groups, batch_sizes).get(("video",), 0.0)


def setting_config(base_config, names, video_steps, overrides):
    config = load_config(base_config, overrides)
    config.datasets = [d for d in config.datasets if d.name in names]
    prepared, _ = loop.prepare_datasets(config)
    sizes = {d.name: prepared_size(d) for d in prepared}
    for dataset, resolved in zip(config.datasets, prepared, strict=True):
        dataset.is_image = resolved.is_image
    probability = video_step_probability(config, sizes)
    epoch = config.train.steps_per_epoch
    steps = math.ceil(video_steps / probability / epoch) * epoch
    config.train.steps = steps
    return config, probability


def prepared_size(dataset):
    from cover_tf.data import reader

    builder = reader.get_builder(dataset.builder, data_dir=dataset.data_dir)
    return reader.split_size(builder, dataset.train_split)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--video-steps", type=int, default=600)
    parser.add_argument("--workdir", default="runs/cotrain")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--markdown", default=None, help="write the README table here")
    args = parser.parse_args(argv)
    rows = []
    for setting in args.settings.split(","):
        config, probability = setting_config(
            args.config, SETTINGS[setting], args.video_steps, args.set
        )
        start = time.perf_counter()
        metrics = loop.run(config, pathlib.Path(args.workdir) / setting, verbose=0)
        row = {
            "kind": "cotrain",
            "setting": setting,
            "datasets": list(SETTINGS[setting]),
            "video_steps": args.video_steps,
            "total_steps": config.train.steps,
            "video_step_probability": round(probability, 4),
            "wall_s": round(time.perf_counter() - start, 1),
            **{k: v for k, v in metrics.items() if k.endswith(("/top1", "/top5"))},
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.markdown:
        lines = [
            "| setting | datasets | total steps | appearance top-1 | motion top-1 | images top-1 |",
            "|---|---|---|---|---|---|",
        ]
        for row in rows:
            cells = [
                f"{100 * row[f'{name}/top1']:.1f}" if f"{name}/top1" in row else "-"
                for name in ("appearance", "motion", "images")
            ]
            lines.append(
                f"| {row['setting']} | {' + '.join(row['datasets'])} | {row['total_steps']} | "
                + " | ".join(cells)
                + " |"
            )
        pathlib.Path(args.markdown).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
