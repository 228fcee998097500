"""The embedded study: what co-training does on cover_synthetic, over seeds, with controls.

Trains the demo model and recipe (configs/demo.yaml, `STUDY_RECIPE` on top) with every seed
of `--seeds` (a seed sets the initialisation and the data order: `train.seed` and
`mixing.seed`) in these runs:

  appearance, motion, images   each set alone, `--video-steps` steps
  videos                       appearance + motion (two heads), `--video-steps` steps
  cover_video                  CoVeR (three heads) at EQUAL VIDEO STEPS: image batches come on
                               top, total steps = video steps / the video group's step probability
  cover_total                  CoVeR at EQUAL TOTAL STEPS (`--video-steps` steps in all, the
                               paper's way: epochs over the mix)
  motion_space_only            control: motion alone with space-only attention and frame-wise
                               patches (`model.tubelet_size=1`): nothing mixes time
  motion_single_frame          control: motion alone on one frame per clip
  motion_frame_wise            ablation (with --frame-wise): motion alone with TimeSformer's
                               frame-wise patches (`model.tubelet_size=1`) instead of the demo's
                               difference tubelets
  transfer_<A>_to_<B>          fine-tune the <A> run's backbone on <B> with a new head for
                               `--finetune-steps` steps (model.init_checkpoint, init_heads false);
                               A in (B, the other video set, cover_video): B->B is the baseline
and evaluates every head on its ~1000-example test split (1 clip x 1 crop), plus the motion head
of `motion` and `cover_video` with the frames of each test clip shuffled in time (control).
Writes <out>/study.json (every run and every summary; the date, the commit and the machine: CPU
model, ISA flags, cores, versions), <out>/study.md (tables: mean and 95%
t interval over seeds, paired differences by seed) and <out>/study.png (bars, 95% intervals).
Each run lives in <out>/runs/<run>/s<seed> (its log: s<seed>.log beside it); a rerun reuses the
runs whose config is unchanged. `--jobs` runs train at once in separate processes (default 2).

    python benchmarks/cotrain.py [--seeds 0,1,2] [--video-steps 600] [--finetune-steps 200]
        [--out runs/study]
    python benchmarks/cotrain.py --smoke      # 1 seed, a few steps: checks the study end to end
"""

import argparse
import dataclasses
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import provenance  # noqa: E402  (benchmarks/ is not a package)
import study_report  # noqa: E402

from cover_tf.config import dump_config, load_config  # noqa: E402
from cover_tf.cpu import cpu_flags  # noqa: E402
from cover_tf.data import mixing  # noqa: E402
from cover_tf.training import loop  # noqa: E402
from cover_tf.workdir import Workdir  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
HEADS = ("appearance", "motion", "images")
# The recipe the study's tables were measured with, where configs/demo.yaml differs: 250-step
# epochs (epochs seed the data order), splits read from the files rather than cached (a cached
# split is shuffled whole, which reorders every run's examples), motion clips as scale-jittered
# crops, image batches on TF's kernels rather than XLA (other rounding), and cover_synthetic
# 2.2.0's pixels (the builders' `*_2_2` configs).
STUDY_RECIPE = (
    "train.steps_per_epoch=250",
    "train.xla_one_frame=false",
    "datasets.motion.train_short_side_range=[32,40]",
    *(f"datasets.{name}.cache=none" for name in HEADS),
    *(f"datasets.{name}.builder=cover_synthetic/{name}_2_2" for name in HEADS),
)
VIDEO_SETS = ("appearance", "motion")


@dataclasses.dataclass
class Run:
    """One training run of the study.

    Args:
      name: the setting ("cover_video", "transfer_motion_to_appearance", ...).
      datasets: the dataset blocks of configs/demo.yaml it trains on (one head each).
      steps: optimizer steps; None: from the equal-video-steps budget (CoVeR).
      overrides: config overrides KEY=VALUE on top of the demo recipe.
      init_from: the name of the run whose model initialises this one (transfer).
      shuffled_eval: heads also evaluated with the frames of each clip shuffled in time.
    """

    name: str
    datasets: tuple
    steps: int | None
    overrides: tuple = ()
    init_from: str | None = None
    shuffled_eval: tuple = ()


def study_runs(video_steps, finetune_steps, frame_wise=False):
    """The runs of one seed, in an order where every transfer comes after its source."""
    runs = [
        Run("appearance", ("appearance",), video_steps),
        Run("motion", ("motion",), video_steps, shuffled_eval=("motion",)),
        Run("images", ("images",), video_steps),
        Run("videos", VIDEO_SETS, video_steps),
        Run("cover_video", HEADS, None, shuffled_eval=("motion",)),
        Run("cover_total", HEADS, video_steps),
        Run(
            "motion_space_only",
            ("motion",),
            video_steps,
            overrides=("model.attention_type=space_only", "model.tubelet_size=1"),
        ),
        Run(
            "motion_single_frame",
            ("motion",),
            video_steps,
            overrides=("model.num_frames=1", "datasets.motion.num_frames=1"),
        ),
    ]
    if frame_wise:
        runs.append(
            Run("motion_frame_wise", ("motion",), video_steps, overrides=("model.tubelet_size=1",))
        )
    for target in VIDEO_SETS:
        other = next(name for name in VIDEO_SETS if name != target)
        for source in (target, other, "cover_video"):
            runs.append(
                Run(
                    f"transfer_{source}_to_{target}",
                    (target,),
                    finetune_steps,
                    overrides=("model.init_heads=false",),
                    init_from=source,
                )
            )
    return runs


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


def run_files(out, name, seed):
    """The workdir of run `name` at `seed`."""
    return Workdir(pathlib.Path(out) / "runs" / name / f"s{seed}")


def run_config(base, run, seed, video_steps, common, out):
    """The config of `run` at `seed`, and its expected video-step probability."""
    overrides = [*common, *run.overrides, f"train.seed={seed}", f"mixing.seed={seed}"]
    if run.init_from:
        overrides.append(f"model.init_checkpoint={run_files(out, run.init_from, seed).model}")
    config = load_config(base, overrides)
    config.datasets = [d for d in config.datasets if d.name in run.datasets]
    prepared, _ = loop.prepare_datasets(config)
    sizes = {d.name: loop_size(d) for d in prepared}
    for dataset, resolved in zip(config.datasets, prepared, strict=True):
        dataset.is_image = resolved.is_image
    probability = video_step_probability(config, sizes)
    steps = math.ceil(run.steps if run.steps is not None else video_steps / probability)
    # Epochs of at most the recipe's length that divide the run: 800 steps are 4 x 200, not
    # 4 x 250 (the budget stays the budget; the rounding is at most epochs - 1 steps).
    epochs = math.ceil(steps / config.train.steps_per_epoch)
    config.train.steps_per_epoch = math.ceil(steps / epochs)
    config.train.steps = epochs * config.train.steps_per_epoch
    config.optimizer.warmup_steps = min(config.optimizer.warmup_steps, config.train.steps // 10)
    return config, probability


def loop_size(dataset):
    from cover_tf.data import reader

    builder = reader.get_builder(dataset.builder, data_dir=dataset.data_dir)
    return reader.split_size(builder, dataset.train_split)


def reusable(config, files):
    """True when `files` holds finished metrics of exactly `config`; a run dir of another config
    is removed (its backup would otherwise resume the wrong run)."""
    if not pathlib.Path(files.config).exists():
        return False
    with tempfile.TemporaryDirectory() as tmp:
        dump_config(config, pathlib.Path(tmp) / "config.yaml")
        same = (pathlib.Path(tmp) / "config.yaml").read_text() == pathlib.Path(
            files.config
        ).read_text()
    if not same:
        shutil.rmtree(files.root)
        return False
    return pathlib.Path(files.metrics).exists()


def shuffled_time_top1(model_path, config, head, seed):
    """Top-1 of `head` on its test split with each clip's frames in a random order."""
    import keras
    import tensorflow as tf

    import cover_tf  # noqa: F401  (registers the model's classes)
    from cover_tf.data import input_pipeline
    from cover_tf.models.multiview import view_probabilities

    model = keras.saving.load_model(model_path, compile=False)
    datasets, _ = loop.prepare_datasets(config)
    cfg = next(d for d in datasets if d.name == head)
    mean, std = model.backbone.pixel_mean, model.backbone.pixel_std
    data = input_pipeline.eval_dataset(cfg, mean, std, config.eval.batch_size)
    limit = config.eval.max_examples or math.inf
    rng = np.random.default_rng(seed)
    correct = count = 0
    for views, labels in data:
        views, labels = views.numpy(), labels.numpy()
        for i in range(len(views)):  # views: [B, V, T, H, W, 3]
            views[i] = views[i][:, rng.permutation(views.shape[2])]
        probabilities = view_probabilities(model, head, tf.constant(views)).numpy()
        keep = labels >= 0
        correct += int(np.sum(probabilities.argmax(-1)[keep] == labels[keep]))
        count += int(keep.sum())
        if count >= limit:
            break
    return correct / count, count


def train_run(base, run, seed, args, common):
    config, probability = run_config(base, run, seed, args.video_steps, common, args.out)
    files = run_files(args.out, run.name, seed)
    reused = reusable(config, files)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if reused:
        metrics = json.loads(pathlib.Path(files.metrics).read_text())
    else:
        metrics = loop.run(config, files.root, verbose=0)
    for head in run.shuffled_eval:
        top1, count = shuffled_time_top1(files.model, config, head, seed)
        metrics[f"{head}/top1_shuffled_time"] = top1
        metrics[f"{head}/num_examples_shuffled_time"] = count
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "run": run.name,
        "seed": seed,
        "datasets": list(run.datasets),
        "total_steps": config.train.steps,
        "expected_video_steps": round(config.train.steps * probability, 1),
        "init_from": run.init_from,
        "overrides": list(run.overrides),
        "reused": reused,
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime, 1),
        **{k: v for k, v in metrics.items() if k.split("/")[0] in HEADS},
    }


def run_in_workers(tasks, worker_argv, jobs, out):
    """Runs `tasks` [(Run, seed)] in `jobs` worker processes at a time (`--task`), each with
    cores / jobs TensorFlow threads; a transfer starts once its source run is done. Returns the
    rows in task order; a failed run stops the study with its log's tail."""
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads}
    pending, running, rows = list(tasks), {}, {}
    while pending or running:
        done = {(name, seed) for name, seed in rows}
        for task in [
            t for t in pending if t[0].init_from is None or (t[0].init_from, t[1]) in done
        ]:
            if len(running) >= jobs:
                break
            run, seed = task
            pending.remove(task)
            log = out / "runs" / run.name / f"s{seed}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, __file__, *worker_argv, "--task", f"{run.name}:{seed}"]
            # Files, not pipes: a pipe nobody reads until the end could fill and block the run.
            with open(log, "w") as stderr, open(log.with_suffix(".out"), "w") as stdout:
                process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
            running[process] = (run.name, seed, log)
        time.sleep(0.2)
        for process in [p for p in running if p.poll() is not None]:
            name, seed, log = running.pop(process)
            stdout = log.with_suffix(".out").read_text()
            if process.returncode:
                for other in running:
                    other.kill()
                tail = log.read_text()[-3000:]
                raise SystemExit(f"run {name} (seed {seed}) failed; the end of {log}:\n{tail}")
            rows[(name, seed)] = json.loads(stdout.strip().splitlines()[-1])
            print(json.dumps(rows[(name, seed)]), flush=True)
    return [rows[(run.name, seed)] for run, seed in tasks]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--video-steps", type=int, default=600)
    parser.add_argument("--finetune-steps", type=int, default=200)
    parser.add_argument("--out", default="runs/study")
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--smoke", action="store_true", help="1 seed, 20 steps, 64 test clips")
    parser.add_argument(
        "--frame-wise",
        action="store_true",
        help="also the motion_frame_wise ablation (3 more motion runs; outside the hour)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="runs trained at once, each in its own process with cores / jobs threads (the demo "
        "model gains less from a second thread than from a second run)",
    )
    parser.add_argument("--task", help=argparse.SUPPRESS)  # NAME:SEED, run by a worker
    args = parser.parse_args(argv)
    common = [*STUDY_RECIPE, *args.set]
    if args.smoke:
        args.seeds, args.video_steps, args.finetune_steps = "0", 20, 10
        common += ["eval.max_examples=64", "train.steps_per_epoch=10"]
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be integers separated by commas, got {args.seeds!r}")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {
        run.name: run
        for run in study_runs(args.video_steps, args.finetune_steps, args.frame_wise or args.smoke)
    }
    if args.task:  # one run, in this process (a worker of the parallel study)
        name, _, seed = args.task.partition(":")
        print(json.dumps(train_run(args.config, runs[name], int(seed), args, common)), flush=True)
        return 0
    tasks = [(run, seed) for seed in seeds for run in runs.values()]
    usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if args.jobs == 1:
        rows = []
        for run, seed in tasks:
            rows.append(train_run(args.config, run, seed, args, common))
            print(json.dumps(rows[-1]), flush=True)
    else:
        worker_argv = list(sys.argv[1:] if argv is None else argv)
        rows = run_in_workers(tasks, worker_argv, args.jobs, out)
    after = resource.getrusage(resource.RUSAGE_SELF)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    cpu += after_children.ru_utime + after_children.ru_stime
    cpu -= children.ru_utime + children.ru_stime
    cpu_model, flags = cpu_flags()
    study = {
        "date": provenance.today(),
        **provenance.git_commit(),
        "command": provenance.command(),
        "machine": {
            "machine": provenance.machine_name(cpu_model, flags),
            "cpu_model": cpu_model,
            "cores": os.cpu_count(),
            "isa": provenance.isa_flags(flags),
            "python": platform.python_version(),
            **{name: importlib.metadata.version(name) for name in ("tensorflow", "keras")},
        },
        "seeds": seeds,
        "video_steps": args.video_steps,
        "finetune_steps": args.finetune_steps,
        "overrides": common,
        "jobs": args.jobs,
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(cpu, 1),
        "runs": rows,
    }
    study["summary"] = study_report.summarize(rows)
    (out / "study.json").write_text(json.dumps(study, indent=1))
    (out / "study.md").write_text(study_report.markdown(study))
    study_report.plot(study, out / "study.png")
    print(f"wrote {out / 'study.md'}, {out / 'study.json'}, {out / 'study.png'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
