"""The HF TimeSformer peer: CPU clips/s of transformers' `TimesformerForVideoClassification`.

The same configs, batches, FLOP count and step as `throughput.py` times for cover_tf, on PyTorch:
inference is `model(pixel_values)` under `torch.no_grad()`; training is forward, cross-entropy on
the float32 logits outside the model, backward and `torch.optim.AdamW(1e-4)`. `--bf16` runs the
forward pass under CPU autocast (bfloat16 matmuls, float32 weights); `--compile` also measures
each mode under `torch.compile`. The model is built from a `TimesformerConfig` (divided
space-time attention, dropout and drop path 0, random weights: nothing is downloaded).

Every repeat of every mode runs in a fresh subprocess (its peak resident memory is its own; a
compiled graph or cache cannot carry over): one untimed first call (compilation, for
`torch.compile`), `--warmup` steps, then `--steps` timed steps, whose median gives the repeat's
clips/s. Repeats alternate the modes, so a slow spell of the machine spreads over all of them.

JSON lines on stdout, progress on stderr: one `config` line per config with, per mode (`infer`,
`train`, `infer_compile`, `train_compile`), `<mode>_clips_per_s_runs` (one per repeat),
`<mode>_clips_per_s` (their median), `<mode>_step_ms_runs`, `<mode>_first_call_s_runs`,
`<mode>_peak_rss_mb` and `<mode>_foreign_cpu_frac_runs`, beside the versions of torch and
transformers. A measurement that fails ends the script: one sentence on stderr, exit status 1;
without torch or transformers it exits with status 2.

    python benchmarks/peer_timesformer.py --configs tiny --steps 3 --warmup 1 --repeats 2
    python benchmarks/peer_timesformer.py --configs small --bf16 --compile
    python benchmarks/peer_timesformer.py --check      # can the peer run here? (exit 0 / 2)
"""

import argparse
import contextlib
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights: never a download
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import throughput  # noqa: E402  (its configs and FLOP count; it imports no TensorFlow at load)

PROG = "peer_timesformer.py"
NEEDED = ("torch", "transformers")
MODES = ("infer", "train")


def log(message):
    print(f"[peer] {message}", file=sys.stderr, flush=True)


def missing_packages() -> str | None:
    """Why the peer cannot run in this interpreter (one sentence), or None when it can."""
    for name in NEEDED:
        try:
            __import__(name)
        except Exception as error:  # ImportError, or a broken install failing on import
            return (
                f"the HF TimeSformer peer needs {' and '.join(NEEDED)}, and importing {name} "
                f"failed ({one_line(error)}); the test extras install both "
                "(pip install -e '.[test]')"
            )
    return None


def one_line(error) -> str:
    """`Type: message` of an exception, its lines joined."""
    message = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def versions() -> dict:
    return {name: importlib.metadata.version(name) for name in NEEDED}


# ----------------------------------------------------------------------------- subprocess side
def build_model(config):
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    hf_config = TimesformerConfig(
        image_size=config["image_size"], patch_size=throughput.PATCH_SIZE,
        num_frames=config["num_frames"], num_channels=3, hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_layers"], num_attention_heads=config["num_heads"],
        intermediate_size=config["mlp_dim"], num_labels=throughput.NUM_CLASSES,
        attention_type="divided_space_time", hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, drop_path_rate=0,  # transformers types it int
    )  # fmt: skip
    return TimesformerForVideoClassification(hf_config)


def peak_rss_mb():
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


def measure(spec):
    """One repeat of one mode in this process: seconds per step and what it cost."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(spec["threads"])
    config, batch = spec["model_config"], spec["batch"]
    model = build_model(config)
    size, frames = config["image_size"], config["num_frames"]
    clips = torch.randn(batch, frames, 3, size, size)  # HF's layout: [B, T, C, H, W]
    labels = torch.randint(0, throughput.NUM_CLASSES, (batch,))
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if spec["bf16"]
        else contextlib.nullcontext
    )
    forward = torch.compile(model) if spec["compiled"] else model
    if spec["mode"] == "infer":
        model.eval()

        def step():
            with torch.no_grad(), autocast():
                return forward(pixel_values=clips).logits
    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                logits = forward(pixel_values=clips).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            loss.backward()
            optimizer.step()
            return loss

    start = time.perf_counter()
    step()  # compilation (torch.compile) and first run; not timed
    first_call_s = time.perf_counter() - start
    for _ in range(spec["warmup"]):
        step()
    busy0, cpu0, wall0 = throughput.cpu_busy_seconds(), time.process_time(), time.perf_counter()
    times = []
    for _ in range(spec["steps"]):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    wall = time.perf_counter() - wall0
    foreign = throughput.cpu_busy_seconds() - busy0 - (time.process_time() - cpu0)
    median = statistics.median(times)
    return {
        "step_ms": round(median * 1e3, 3),
        "clips_per_s": batch / median,
        "first_call_s": round(first_call_s, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "foreign_cpu_frac": round(max(0.0, foreign) / (wall * (os.cpu_count() or 1)), 3),
    }


def worker_main(spec):
    try:
        result = measure(spec)
    except Exception as error:  # reported to the driver as one line
        result = {"error": one_line(error)[:600]}
    print(json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- driver side
def run_worker(spec, timeout):
    command = [sys.executable, os.path.abspath(__file__), "--_worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within --timeout {timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][-300:]
        return {"error": f"the worker exited with status {done.returncode} ({tail})"}
    return json.loads(lines[-1])


def fail(message, status=1):
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def measure_config(args, name, modes):
    """The `config` line of one config: every mode's repeats, each in its own process."""
    config = throughput.CONFIGS[name]
    row = {
        "kind": "config", "impl": "hf_timesformer", "config": name,
        "precision": "bf16" if args.bf16 else "fp32", "threads": args.threads, **versions(),
        **{f"batch_{mode}": config[f"batch_{mode}"] for mode in MODES},
    }  # fmt: skip
    results = {mode: [] for mode in modes}
    for repeat in range(args.repeats):
        for mode in modes:
            base = mode.removesuffix("_compile")
            spec = {"model_config": config, "mode": base, "batch": config[f"batch_{base}"],
                    "compiled": mode.endswith("_compile"), "bf16": args.bf16,
                    "threads": args.threads, "warmup": args.warmup, "steps": args.steps}  # fmt: skip
            log(f"{name} {mode} {row['precision']} (repeat {repeat + 1} of {args.repeats}) ...")
            result = run_worker(spec, args.timeout)
            if "error" in result:
                hint = " (without --compile the eager modes still run)" if spec["compiled"] else ""
                fail(f"{name} {mode} {row['precision']} failed: {result['error']}{hint}")
            log(
                f"  -> {result['clips_per_s']:.3g} clips/s, peak RSS {result['peak_rss_mb']:.0f} MiB"
            )
            results[mode].append(result)
    for mode, runs in results.items():
        gflop = throughput.forward_gflop_per_clip(config) * (3 if mode.startswith("train") else 1)
        clips = [r["clips_per_s"] for r in runs]
        row.update({
            f"{mode}_gflop_per_clip": round(gflop, 4),
            f"{mode}_clips_per_s_runs": clips,
            f"{mode}_clips_per_s": statistics.median(clips),
            f"{mode}_step_ms_runs": [r["step_ms"] for r in runs],
            f"{mode}_first_call_s_runs": [r["first_call_s"] for r in runs],
            f"{mode}_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            f"{mode}_foreign_cpu_frac_runs": [r["foreign_cpu_frac"] for r in runs],
        })  # fmt: skip
    return row


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--configs", default="tiny,small,base", help="comma list of " + ",".join(throughput.CONFIGS)
    )
    add("--modes", default="infer,train", help="comma list of infer,train")
    add("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    add("--steps", type=int, default=10, help="timed steps per repeat (median taken)")
    add("--warmup", type=int, default=3, help="untimed steps after the first call")
    add("--repeats", type=int, default=3, help="fresh processes per mode")
    add("--bf16", action="store_true", help="forward passes under CPU bfloat16 autocast")
    add("--compile", action="store_true", help="also each mode under torch.compile")
    add("--timeout", type=int, default=1800, help="seconds per measurement process")
    add("--check", action="store_true", help="only check that torch and transformers import")
    add("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    throughput.check_lists(parser, args, throughput.CONFIGS, {"modes": "infer train"})
    for flag in ("steps", "repeats", "threads"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args._worker:
        worker_main(json.loads(args._worker))
        return 0
    problem = missing_packages()
    if problem:
        fail(problem, status=2)
    if args.check:
        print(json.dumps({"kind": "check", **versions()}), flush=True)
        return 0
    modes = args.modes.split(",")
    modes += [f"{mode}_compile" for mode in modes] if args.compile else []
    for name in args.configs.split(","):
        print(json.dumps(measure_config(args, name, modes)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
