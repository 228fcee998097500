"""CPU throughput, MFU and peak memory of cover_tf's TimeSformer, optionally beside the HF peer.

For each config x precision (fp32, bf16 = `mixed_bfloat16`) x XLA (off, on) it measures inference
(forward, `training=False`) and training (forward, sparse CE on the logits outside the model,
backward, `keras.optimizers.AdamW(1e-4)`, one `tf.function(jit_compile=...)` step) clips/s. Each
measurement runs in its own fresh subprocess. JSON lines go to stdout, progress to stderr; the
first names the machine (CPU model, ISA flags, cores, versions, the oneDNN version TensorFlow
runs, TF's measured matmul peaks, date, commit). See benchmarks/README.md for the fields and the
ratio against the peer.

    python benchmarks/throughput.py --configs tiny --steps 3 --warmup 1 --repeats 1 --peer
    python benchmarks/throughput.py --peer --peer-compile --markdown table.md
    python benchmarks/throughput.py --max-batch --configs base --frames 8,16 --memory-gib 24
    python benchmarks/throughput.py --configs small,base --modes train --remat   # its time cost
    python benchmarks/throughput.py --peer --peer-compile --rounds 3   # ratios with 95% intervals

The peer is `benchmarks/peer_timesformer.py` (HF transformers' TimeSformer on PyTorch). With
`--peer`, a peer that cannot run (torch or transformers missing, a failed peer measurement) ends
the benchmark: one sentence on stderr, a non-zero exit status, no ratio.

With `--rounds N` every cell is measured N times, ours and the peer's alternating config by
config, and each round's ratio pairs the two measurements taken minutes apart: a shared VM's
drift cancels in the pair, and the spread over the rounds gives the ratio's 95% interval (a t
interval on the log ratios).
"""

import argparse
import importlib
import importlib.util
import itertools
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import provenance  # noqa: E402
from provenance import machine_name  # noqa: E402, F401  (the result files' machine slug)

REPO_ROOT = provenance.REPO_ROOT
PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_timesformer.py")
PROG = "throughput.py"
NUM_CLASSES = 400
CONFIGS = {  # shared with the peer (peer_timesformer.py), in cover_tf's argument names
    "tiny": dict(image_size=64, num_frames=8, hidden_size=192, num_layers=4, num_heads=3,
                 mlp_dim=768, batch_infer=8, batch_train=8),
    "small": dict(image_size=112, num_frames=8, hidden_size=384, num_layers=12, num_heads=6,
                  mlp_dim=1536, batch_infer=4, batch_train=4),
    "base": dict(image_size=224, num_frames=8, hidden_size=768, num_layers=12, num_heads=12,
                 mlp_dim=3072, batch_infer=2, batch_train=1),
}  # fmt: skip
PATCH_SIZE = 16


def log(message):
    print(f"[throughput] {message}", file=sys.stderr, flush=True)


RESULTS = []  # every line emitted, for --results-dir


def emit(record):
    RESULTS.append(record)
    print(json.dumps(record), flush=True)


def forward_gflop_per_clip(config):
    """Forward FLOPs (2 x multiply-adds of matmuls and the patch conv) of one clip through divided
    space-time attention, counted as the peer's `analytic_flops` counts them: temporal attention
    over T tokens per patch (CLS excluded) with its extra `temporal_fc` Linear, spatial attention
    over N + 1 tokens per frame (CLS copied per frame), MLP on N*T + 1 tokens, patch embedding and
    head. Norms, softmax, GELU and adds are left out (<1%)."""
    d, t, mlp = config["hidden_size"], config["num_frames"], config["mlp_dim"]
    n = (config["image_size"] // PATCH_SIZE) ** 2
    patch_tokens, spatial_tokens = n * t, t * (n + 1)
    temporal = 5 * patch_tokens * d * d + 2 * n * t * t * d  # qkv + out + temporal_fc, QK^T + AV
    spatial = 4 * spatial_tokens * d * d + 2 * t * (n + 1) ** 2 * d
    per_layer = temporal + spatial + (patch_tokens + 1) * 2 * d * mlp
    macs = patch_tokens * 3 * PATCH_SIZE**2 * d + config["num_layers"] * per_layer + d * NUM_CLASSES
    return 2 * macs / 1e9


# ----------------------------------------------------------------------------- subprocess side
def cpu_busy_seconds():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def configure_tensorflow(threads, inter_op_threads):
    """TF as the product loads it: cover_tf first, so its oneDNN choice (`cover_tf.cpu`) holds."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, REPO_ROOT)
    importlib.import_module("cover_tf")  # before TF: its oneDNN choice is made on TF's load
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    return tf


def time_steps(step, warmup, steps, repeats):
    """Seconds per step: median of `steps` timed calls, best (lowest) over `repeats` blocks."""
    for _ in range(warmup):
        step()
    medians = []
    for _ in range(repeats):
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        medians.append(statistics.median(times))
    return min(medians), medians


PEAK_CALLS = 6
# Square products and two of base's token x width products (its MLP): a BLAS can run the model's
# own shapes faster than large squares (by more than half on an AVX2-only EPYC), so square sizes
# alone can understate the peak the model reaches.
PEAK_SIZES = "1024,2048,4096,8192x768x3072,8192x3072x768"


def matmul_shape(size):
    """`"n"` -> (n, n, n); `"MxKxN"` -> (M, K, N): an (M x K) @ (K x N) product."""
    dims = [int(d) for d in size.split("x")]
    return tuple(dims * 3 if len(dims) == 1 else dims)


def peak_sizes(spec, precision):
    """The sizes measured for `precision`: all for fp32 and native bf16, the first for emulated
    bf16. Emulated bf16 says nothing new at large sizes and can be very slow (torch's emulated
    bf16 matmul runs at about 1 GFLOP/s: minutes per product at 2048)."""
    from cover_tf.cpu import native_bf16

    sizes = spec["peak_sizes"]
    return sizes if precision == "fp32" or native_bf16(spec["flags"]) else sizes[:1]


def best_rate(call, size):
    """GFLOP/s of the matmul `call` of `size`: best single call of PEAK_CALLS after 2 warm ones."""
    m, k, n = matmul_shape(size)
    best, _ = time_steps(call, warmup=2, steps=1, repeats=PEAK_CALLS)
    return 2 * m * k * n / best / 1e9


def measure_matmul_peak(spec):
    """TF's matmul GFLOP/s per precision and size (warm, best of PEAK_CALLS); peak = best size."""
    tf = configure_tensorflow(spec["threads"], spec["inter_op_threads"])
    from cover_tf.cpu import onednn_enabled

    result = {"onednn": onednn_enabled()}
    for precision, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
        rates = {}
        for size in peak_sizes(spec, precision):
            m, k, n = matmul_shape(size)
            a = tf.cast(tf.random.stateless_normal((m, k), seed=(0, 0)), dtype)
            b = tf.cast(tf.random.stateless_normal((k, n), seed=(0, 1)), dtype)
            matmul = tf.function(lambda a=a, b=b: tf.reduce_sum(tf.matmul(a, b)[:1, :1]))
            rates[size] = round(best_rate(lambda f=matmul: f().numpy(), size), 1)
        result[precision] = max(rates.values())
        result[f"{precision}_by_size"] = rates
    return result


def measure_torch_peak(spec):
    """The same measurement with torch (the peer's BLAS) in this process."""
    import torch

    torch.set_num_threads(spec["threads"])
    result = {}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        rates = {}
        for size in peak_sizes(spec, precision):
            m, k, n = matmul_shape(size)
            generator = torch.Generator().manual_seed(0)
            a = torch.randn(m, k, generator=generator).to(dtype)
            b = torch.randn(k, n, generator=generator).to(dtype)
            rates[size] = round(best_rate(lambda a=a, b=b: torch.matmul(a, b), size), 1)
        result[precision] = max(rates.values())
        result[f"{precision}_by_size"] = rates
    return result


def compute_precision(spec):
    """What a bf16 cell computes in: the product's choice (`cover_tf.training.precision`), float32
    on a CPU without native bfloat16, where emulated bf16 is slower than float32."""
    sys.path.insert(0, REPO_ROOT)
    from cover_tf.training.precision import effective_precision

    if spec["precision"] != "bf16":
        return "float32"
    return effective_precision("mixed_bfloat16")


def build_step(spec):
    """The model and a zero-argument step (one inference or training step) for `spec`."""
    tf = configure_tensorflow(spec["threads"], spec["inter_op_threads"])
    import keras

    sys.path.insert(0, REPO_ROOT)
    from cover_tf.models import build_cover_model
    from cover_tf.training.compile import xla_fused_updates

    config, batch, xla = spec["model_config"], spec["batch"], spec["xla"] == "on"
    model = build_cover_model(
        {"k400": NUM_CLASSES},
        patch_size=PATCH_SIZE,
        dtype=None if compute_precision(spec) == "float32" else "mixed_bfloat16",
        remat=spec.get("remat", False),
        **{k: v for k, v in config.items() if not k.startswith("batch")},
    )
    shape = (batch, config["num_frames"], config["image_size"], config["image_size"], 3)
    frames = tf.random.stateless_normal(shape, seed=(0, 1))
    labels = tf.random.stateless_uniform((batch,), (0, 2), maxval=NUM_CLASSES, dtype=tf.int32)
    if spec["mode"] == "infer":
        forward = tf.function(lambda x: model(x, training=False)["k400"], jit_compile=xla)

        def step():
            return forward(frames).numpy()
    else:
        optimizer = xla_fused_updates(keras.optimizers.AdamW(1e-4))  # as training does
        optimizer.build(model.trainable_variables)

        @tf.function(jit_compile=xla)
        def train_step(x, y):
            with tf.GradientTape() as tape:
                logits = tf.cast(model(x, training=True)["k400"], tf.float32)
                loss = tf.reduce_mean(
                    keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
                )
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        def step():
            return train_step(frames, labels).numpy()

    return model, step


def measure_model(spec):
    """One (config, mode, precision, xla, batch) measurement in this process."""
    model, step = build_step(spec)
    batch = spec["batch"]
    start = time.perf_counter()
    step()  # trace (+ XLA compile) and first run; not timed
    first_call_s = time.perf_counter() - start
    busy0, cpu0, wall0 = cpu_busy_seconds(), time.process_time(), time.perf_counter()
    best, medians = time_steps(step, spec["warmup"], spec["steps"], spec["repeats"])
    wall = time.perf_counter() - wall0
    foreign = cpu_busy_seconds() - busy0 - (time.process_time() - cpu0)
    return {
        "step_ms_median": best * 1e3,
        "step_ms_repeats": [round(m * 1e3, 2) for m in medians],
        "clips_per_s": batch / best,
        "first_call_s": round(first_call_s, 2),
        "foreign_cpu_frac": round(max(0.0, foreign) / (wall * (os.cpu_count() or 1)), 3),
        "params_m": round(model.count_params() / 1e6, 3),
        "compute_precision": compute_precision(spec),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def onednn_probe(spec):
    """A tiny TF matmul, run with `ONEDNN_VERBOSE=1` by `onednn_info` (oneDNN prints its version
    on stdout when TF first runs one of its primitives); whether TF runs oneDNN's kernels."""
    tf = configure_tensorflow(spec["threads"], spec["inter_op_threads"])
    from cover_tf.cpu import onednn_enabled

    a = tf.ones((64, 64))
    tf.function(lambda: tf.matmul(a, a))().numpy()
    return {"onednn": onednn_enabled()}


def worker_main(spec):
    try:
        tasks = {"peak": measure_matmul_peak, "torch_peak": measure_torch_peak,
                 "onednn": onednn_probe}  # fmt: skip
        result = tasks.get(spec["task"], measure_model)(spec)
    except Exception as error:  # reported as a failed measurement, never a crash
        result = {"error": f"{type(error).__name__}: {str(error).strip()[:600]}"}
    emit(result)


# ----------------------------------------------------------------------------- driver side
def child_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0.0


def run_worker(spec, timeout, memory_limit_mb=None, script=__file__, env=None, stdout_lines=None):
    """Runs one measurement in a fresh interpreter (`script --_worker SPEC`, this file's by
    default); kills it past `timeout` or `memory_limit_mb` (resident memory polled from /proc,
    which unlike RLIMIT_AS ignores TF's address reservations). `stdout_lines`, a list, receives
    the worker's other stdout lines."""
    command = [sys.executable, os.path.abspath(script), "--_worker", json.dumps(spec)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    start, killed = time.monotonic(), None
    while process.poll() is None:
        if time.monotonic() - start > timeout:
            killed = f"timeout after {timeout} s"
        elif memory_limit_mb and child_rss_mb(process.pid) > memory_limit_mb:
            killed = f"resident memory over the {memory_limit_mb:.0f} MiB limit"
        if killed:
            process.kill()
            break
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    results = [line for line in stdout.splitlines() if line.startswith("{")]
    if stdout_lines is not None:
        stdout_lines += [line for line in stdout.splitlines() if not line.startswith("{")]
    if killed or process.returncode != 0 or not results:
        tail = " | ".join(stderr.strip().splitlines()[-4:])[-600:]
        return {"error": killed or f"worker exit code {process.returncode}: {tail}"}
    return json.loads(results[-1])


def cpu_info():
    """(model name, set of ISA flags) from /proc/cpuinfo: the product's reading
    (`cover_tf.cpu.cpu_flags`, which also picks the bf16 fallback and oneDNN)."""
    sys.path.insert(0, REPO_ROOT)
    from cover_tf.cpu import cpu_flags

    return cpu_flags()


def onednn_info(threads, inter_op_threads, timeout=600):
    """{"onednn": whether TF's workers run oneDNN's kernels, "onednn_version": the oneDNN
    version TF runs (None where it runs none)}: a worker process with `ONEDNN_VERBOSE=1`."""
    spec = {"task": "onednn", "threads": threads, "inter_op_threads": inter_op_threads}
    lines = []
    result = run_worker(spec, timeout, env=dict(os.environ, ONEDNN_VERBOSE="1"), stdout_lines=lines)
    versions = [m.group(1) for ln in lines if (m := re.search(r"oneDNN v(\d+(?:\.\d+)*)", ln))]
    if "error" in result:
        log(f"oneDNN probe failed: {result['error']}")
    return {"onednn": result.get("onednn"), "onednn_version": versions[0] if versions else None}


def machine_record(args, peaks):
    """The first JSON line: where and on what the figures were measured."""
    import importlib.metadata as metadata

    cpu_model, flags = cpu_info()
    versions = {p: metadata.version(p) for p in ("tensorflow", "keras", "numpy")}
    return {
        "kind": "machine", "impl": "cover_tf", "machine": machine_name(cpu_model, flags),
        "date": provenance.today(), **provenance.git_commit(), "command": provenance.command(),
        "python": platform.python_version(), **versions,
        **onednn_info(args.threads, args.inter_op_threads),  # TF's oneDNN kernels: on? version?
        "cpu_model": cpu_model, "cores": os.cpu_count(),
        "avx2": "avx2" in flags, "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_bf16" in flags,
        "isa": provenance.isa_flags(flags),
        "threads": {"intra_op": args.threads, "inter_op": args.inter_op_threads},
        "peak_fp32_gflops": peaks["fp32"], "peak_bf16_gflops": peaks["bf16"],
        "torch_peak_fp32_gflops": peaks.get("torch_fp32"),
        "torch_peak_bf16_gflops": peaks.get("torch_bf16"),
        "peaks_by_size": peaks.get("by_size"), "peak_source": peaks["source"],
    }  # fmt: skip


def measure_peaks(args):
    """TF's (and, with --peer, torch's) matmul peaks: several sizes, warm, best of PEAK_CALLS."""
    if args.peak_gflops and args.peak_bf16_gflops:
        return {"fp32": args.peak_gflops, "bf16": args.peak_bf16_gflops, "source": "given"}
    _, flags = cpu_info()
    spec = {"threads": args.threads, "inter_op_threads": args.inter_op_threads,
            "flags": sorted(flags), "peak_sizes": args.peak_sizes}  # fmt: skip
    log(
        f"measuring matmul peaks (sizes {args.peak_sizes}, fp32 and bf16, best of {PEAK_CALLS}) ..."
    )
    measured = {"tf": run_worker(dict(spec, task="peak"), args.timeout)}
    if args.peer:
        measured["torch"] = run_worker(dict(spec, task="torch_peak"), args.timeout)
    for name, result in measured.items():
        if "error" in result:
            log(f"{name} peak measurement failed: {result['error']}")
    tf_peaks, torch_peaks = measured["tf"], measured.get("torch", {})
    return {
        "fp32": args.peak_gflops or tf_peaks.get("fp32"),
        "bf16": args.peak_bf16_gflops or tf_peaks.get("bf16"),
        "torch_fp32": torch_peaks.get("fp32"), "torch_bf16": torch_peaks.get("bf16"),
        "by_size": {f"{lib}_{p}": result.get(f"{p}_by_size") for lib, result in measured.items()
                    for p in ("fp32", "bf16")},
        "source": f"measured (matmul sizes {args.peak_sizes}, warm, best of {PEAK_CALLS})",
    }  # fmt: skip


def model_config(name, frames=None):
    config = dict(CONFIGS[name])
    if frames:
        config["num_frames"] = frames
    return config


def measure(args, name, mode, precision, xla, peaks, batch=None, frames=None, limit_mb=None):
    config = model_config(name, frames)
    batch = batch or config[f"batch_{mode}"]
    spec = {
        "task": "model", "model_config": config, "mode": mode, "precision": precision,
        "xla": xla, "batch": batch, "steps": args.steps, "warmup": args.warmup,
        "repeats": args.repeats, "threads": args.threads, "inter_op_threads": args.inter_op_threads,
        "remat": args.remat,
    }  # fmt: skip
    gflop = forward_gflop_per_clip(config) * (3 if mode == "train" else 1)
    record = {"kind": "measurement", "impl": "cover_tf", "config": name, "mode": mode,
              "precision": precision, "xla": xla, "batch": batch,
              "num_frames": config["num_frames"], "gflop_per_clip": round(gflop, 4),
              "remat": args.remat}  # fmt: skip
    log(f"{name} {mode} {precision} xla={xla} batch={batch} remat={args.remat} ...")
    record.update(run_worker(spec, args.timeout, limit_mb))
    if "error" in record:
        log(f"  -> ERROR {record['error'][:300]}")
        return record
    achieved = gflop * record["clips_per_s"]
    record["achieved_gflops"] = round(achieved, 2)
    record["mfu"] = achieved / peaks[precision] if peaks.get(precision) else None
    if record["mfu"] and record["mfu"] > 1.0:  # a peak below what the model reaches is wrong
        record["mfu_above_peak"] = True
        log(f"  !! MFU {record['mfu']:.2f} > 1: the {precision} peak measurement is too low")
    if precision == "bf16":
        record["mfu_vs_fp32_peak"] = achieved / peaks["fp32"] if peaks.get("fp32") else None
    log(f"  -> {record['clips_per_s']:.2f} clips/s, {record['step_ms_median']:.1f} ms/step, "
        f"peak RSS {record['peak_rss_mb']:.0f} MiB, foreign CPU {record['foreign_cpu_frac']}")  # fmt: skip
    return record


class PeerError(Exception):
    """The HF peer cannot run or failed: one sentence that ends the benchmark."""


def peer_problem(timeout=600):
    """Why `--peer` cannot run here (one sentence), or None: torch and transformers must be
    importable, here and in the peer's own process (`peer_timesformer.py --check`)."""
    for name in ("torch", "transformers"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return (
                f"--peer runs the HF TimeSformer peer on torch and transformers, and this Python "
                f"cannot import {name}; the test extras install both (pip install -e '.[test]')"
            )
    try:
        done = subprocess.run(
            [sys.executable, PEER_SCRIPT, "--check"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"--peer cannot run: importing torch and transformers took over {timeout} s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"--peer cannot run: {last.removeprefix('peer_timesformer.py: error: ')}"
    return None


def run_peer(args, precision, configs, modes=None):
    """The peer (`peer_timesformer.py`) for `configs` (comma list) at one precision: its
    per-config lines as `peer` lines. Its progress is relayed to stderr; a failure raises
    PeerError with the peer's own sentence."""
    command = [sys.executable, PEER_SCRIPT, "--configs", configs, "--modes", modes or args.modes,
               "--threads", str(args.threads), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--repeats", str(args.repeats),
               "--timeout", str(args.peer_timeout)]  # fmt: skip
    command += ["--bf16"] if precision == "bf16" else []
    command += ["--compile"] if args.peer_compile else []
    log(f"peer ({precision}): {' '.join(command[1:])}")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = "no output"
    for line in process.stderr:  # relayed as it comes: a peer run can take many minutes
        print(line, end="", file=sys.stderr, flush=True)
        last = line.strip() or last
    stdout = process.stdout.read()
    process.wait()
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    rows = [dict(r, kind="peer", precision=precision) for r in rows if r.get("kind") == "config"]
    if process.returncode != 0 or not rows:
        reason = last.removeprefix("peer_timesformer.py: error: ")
        raise PeerError(f"the HF peer failed ({configs}, {precision}): {reason}")
    return rows


def measure_round(args, peaks, index):
    """One round: per config, our cells then the peer's, so each pair is minutes apart; emits
    every line tagged with the round and returns the round's summaries."""
    ours, peers = {}, []
    cells = list(itertools.product(*(getattr(args, f).split(",") for f in ("modes", "precisions", "xla"))))  # fmt: skip
    for name in args.configs.split(","):
        for mode, precision, xla in cells:
            record = dict(measure(args, name, mode, precision, xla, peaks), round=index)
            emit(record)
            ours.setdefault((name, mode, precision), []).append(record)
        if args.peer:
            for precision in args.precisions.split(","):
                for row in run_peer(args, precision, name):
                    peers.append(dict(row, round=index))
                    emit(peers[-1])
    summaries = summarize(ours, peers)
    for summary in summaries:
        if summary["best"] and summary["peer_best"]:
            emit(dict(ratio_record(summary), round=index))
    return summaries


def ratio_interval(ratios, confidence=0.95):
    """{"ratio": the geometric mean of paired rounds' ratios, "low", "high": its t interval},
    computed on the log ratios, so 0.8 and 1.25 are equally far from 1 (low and high None for
    one round)."""
    import study_stats  # scipy: loaded by the parent only, never by the measuring workers

    logs = study_stats.mean_interval([math.log(r) for r in ratios], confidence)
    bound = lambda value: None if value is None else math.exp(value)  # noqa: E731
    return {"ratio": math.exp(logs["mean"]), "low": bound(logs["low"]), "high": bound(logs["high"])}


def round_intervals(rounds, confidence=0.95):
    """Per cell measured with the peer in every round: the rounds' ratios, their geometric mean
    and its t interval (`ratio_interval`)."""
    cells = []
    for position, first in enumerate(rounds[0]):
        summaries = [r[position] for r in rounds]
        if not all(s["best"] and s["peer_best"] for s in summaries):
            continue
        ratios = [ratio_record(s)["ratio"] for s in summaries]
        interval = ratio_interval(ratios, confidence)
        ours = [s["best"]["clips_per_s"] for s in summaries]
        peer = [s["peer_best"][0] for s in summaries]
        cells.append({
            "kind": "ratio_interval", "config": first["config"], "mode": first["mode"],
            "precision": first["precision"], "rounds": len(ratios), "ratios": ratios,
            "ratio": interval["ratio"], "confidence": confidence,
            "low": interval["low"], "high": interval["high"],
            "ours_clips_per_s_median": statistics.median(ours),
            "peer_clips_per_s_median": statistics.median(peer),
        })  # fmt: skip
    return cells


def summarize(ours, peers):
    """Per (config, mode, precision): our clips/s per XLA setting, the peer's best per variant."""
    summaries = []
    for (name, mode, precision), group in ours.items():
        peer = next((p for p in peers if p.get("config") == name and p["precision"] == precision), {})  # fmt: skip
        peer_runs = {
            variant: max([r for r in peer.get(f"{key}_clips_per_s_runs") or [] if r], default=None)
            for variant, key in (("eager", mode), ("compiled", f"{mode}_compile"))
        }
        valid = [r for r in group if "error" not in r]
        summaries.append({
            "config": name, "mode": mode, "precision": precision, "records": group,
            "ours": {r["xla"]: r.get("clips_per_s") for r in group},
            "best": max(valid, key=lambda r: r["clips_per_s"]) if valid else None,
            "peer": peer_runs,
            "peer_best": max(((v, k) for k, v in peer_runs.items() if v), default=None),
        })  # fmt: skip
    return summaries


def ratio_record(summary):
    best, (peer_clips, peer_variant) = summary["best"], summary["peer_best"]
    return {
        "kind": "ratio", "config": summary["config"], "mode": summary["mode"],
        "precision": summary["precision"], "ours_clips_per_s": best["clips_per_s"],
        "ours_variant": f"xla {best['xla']} (best)", "peer_clips_per_s": peer_clips,
        "peer_variant": f"{peer_variant} (best)", "ratio": best["clips_per_s"] / peer_clips,
    }  # fmt: skip


def markdown_table(rounds):
    """One row per cell; over several rounds the figures are medians and the ratio is the rounds'
    geometric mean with its 95% interval."""

    def number(value, fmt=".3g"):
        return "-" if value is None else format(value, fmt)

    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    intervals = {(c["config"], c["mode"], c["precision"]): c for c in round_intervals(rounds)} if len(rounds) > 1 else {}  # fmt: skip
    lines = [
        "| config | mode | precision | batch | GFLOP/clip | ours XLA off | ours XLA on | best MFU "
        "| peak RSS MiB | peer eager | peer compiled | ratio |",
        "|" + "---|" * 12,
    ]
    for position, s in enumerate(rounds[0]):
        cell = [r[position] for r in rounds]
        records = [record for c in cell for record in c["records"]]
        ratios = [ratio_record(c)["ratio"] for c in cell if c["best"] and c["peer_best"]]
        ratio = number(median(ratios), ".2f")
        interval = intervals.get((s["config"], s["mode"], s["precision"]))
        if interval:
            ratio = f"{interval['ratio']:.2f} [{interval['low']:.2f}, {interval['high']:.2f}]"
        rss = max((r["peak_rss_mb"] for r in records if "peak_rss_mb" in r), default=None)
        cells = [s["config"], s["mode"], s["precision"], s["records"][0]["batch"],
                 number(s["records"][0]["gflop_per_clip"]),
                 number(median(c["ours"].get("off") for c in cell)),
                 number(median(c["ours"].get("on") for c in cell)),
                 number(median((c["best"] or {}).get("mfu") for c in cell), ".2f"),
                 number(rss, ".0f"), number(median(c["peer"]["eager"] for c in cell)),
                 number(median(c["peer"]["compiled"] for c in cell)), ratio]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    n = len(rounds)
    if n > 1:
        lines.append(f"\nMedians of {n} rounds; ratio: geometric mean of the {n} paired rounds [95% interval].")  # fmt: skip
    return "\n".join(lines) + "\n"


def max_batch(args, peaks, name, frames, precision, xla):
    """Largest training batch whose peak RSS stays under `--memory-gib`: peak RSS at batch 1 and 2,
    a linear extrapolation, verified, doubled while it fits, then bisection to the first failure."""
    limit_mb, rss_by_batch = args.memory_gib * 1024, {}

    def fits(batch):
        record = measure(args, name, "train", precision, xla, peaks, batch, frames, limit_mb)
        emit(record)
        rss_by_batch[batch] = record.get("peak_rss_mb")
        return "error" not in record and record["peak_rss_mb"] <= limit_mb  # polls can miss peaks

    if not fits(1):
        return 0, rss_by_batch
    if not fits(2):
        return 1, rss_by_batch
    slope = max(rss_by_batch[2] - rss_by_batch[1], 1.0)
    good, bad = 2, 2 + int((limit_mb - rss_by_batch[2]) / slope)
    while bad > good and fits(bad):  # the extrapolation undershot: double until a batch fails
        good, bad = bad, 2 * bad
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(middle) else (good, middle)
    return good, rss_by_batch


def run_max_batch(args, peaks):
    frames_list = [int(f) for f in args.frames.split(",")] if args.frames else [None]
    for name, frames, precision, xla in itertools.product(
        args.configs.split(","), frames_list, args.precisions.split(","), args.xla.split(",")
    ):
        batch, rss = max_batch(args, peaks, name, frames, precision, xla)
        emit({"kind": "max_batch", "config": name, "precision": precision, "xla": xla,
              "remat": args.remat,
              "num_frames": model_config(name, frames)["num_frames"],
              "memory_limit_mb": args.memory_gib * 1024, "max_batch": batch,
              "peak_rss_mb_by_batch": rss})  # fmt: skip


def check_lists(parser, args, configs, allowed_by_flag):
    """Fails the parse on a `--configs` name not in `configs` or a comma-list value of a flag
    not among `allowed_by_flag[flag]` (space-separated)."""
    for name in args.configs.split(","):
        if name not in configs:
            parser.error(f"unknown config {name!r}; known: {', '.join(configs)}")
    for flag, allowed in allowed_by_flag.items():
        for value in getattr(args, flag).split(","):
            if value not in allowed.split():
                parser.error(f"--{flag} value {value!r} is not one of {allowed}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--configs", default="tiny,small,base", help="comma list of " + ",".join(CONFIGS))
    add("--precisions", default="fp32,bf16", help="comma list of fp32,bf16")
    add("--xla", default="off,on", help="comma list of off,on (tf.function jit_compile)")
    add("--modes", default="infer,train", help="comma list of infer,train")
    add("--steps", type=int, default=10, help="timed steps per repeat (median taken)")
    add("--warmup", type=int, default=3, help="untimed steps after the first (compiling) call")
    add("--repeats", type=int, default=3, help="timed blocks per measurement (best median taken)")
    add("--threads", type=int, default=os.cpu_count(), help="TF intra-op threads")
    add("--inter-op-threads", type=int, default=1, help="TF inter-op threads")
    add("--peak-gflops", type=float, help="fp32 peak GFLOP/s to use instead of measuring")
    add("--peak-bf16-gflops", type=float, help="bf16 peak GFLOP/s to use instead of measuring")
    add(
        "--peak-sizes",
        default=PEAK_SIZES,
        help="comma list of matmul sizes for the peaks: "
        "N (square) or MxKxN (tokens x width shapes like the model's)",
    )
    add("--timeout", type=int, default=1800, help="seconds per measurement subprocess")
    add(
        "--peer",
        action="store_true",
        help="also run the HF peer (peer_timesformer.py), print ratios",
    )
    add("--peer-compile", action="store_true", help="the peer also under torch.compile")
    add("--peer-timeout", type=int, default=1800, help="seconds per peer measurement process")
    add(
        "--rounds",
        type=int,
        default=1,
        help="measure every cell N times, ours and the peer's "
        "alternating config by config (ratios get 95%% intervals)",
    )
    add("--markdown", nargs="?", const="-", help="print a markdown table to stderr or FILE")
    add("--results-dir", help="also append the JSON lines to DIR/<machine>_<date>.jsonl")
    add("--max-batch", action="store_true", help="search the largest training batch instead")
    add("--memory-gib", type=float, default=24.0, help="--max-batch peak RSS limit")
    add("--frames", help="--max-batch: comma list of num_frames overriding the configs'")
    add("--remat", action="store_true", help="rematerialise the blocks in training (memory)")
    add("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.peak_sizes = args.peak_sizes.split(",")
    for size in args.peak_sizes:
        if not all(d.isdigit() for d in size.split("x")) or len(size.split("x")) not in (1, 3):
            parser.error(f"--peak-sizes entry {size!r} is neither N nor MxKxN")
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    check_lists(parser, args, CONFIGS, {"precisions": "fp32 bf16", "xla": "off on", "modes": "infer train"})  # fmt: skip
    return args


def fail(message, status):
    """Ends the benchmark: `throughput.py: error: <sentence>` on stderr."""
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def main():
    args = parse_args()
    if args._worker:
        worker_main(json.loads(args._worker))
        return
    if args.peer and not args.max_batch:
        problem = peer_problem()
        if problem:
            fail(problem, status=2)
    peaks = measure_peaks(args)
    emit(machine_record(args, peaks))
    if args.max_batch:
        run_max_batch(args, peaks)
    else:
        try:
            rounds = [measure_round(args, peaks, index) for index in range(args.rounds)]
        except PeerError as error:
            fail(error, status=1)
        if args.rounds > 1:
            for cell in round_intervals(rounds):
                emit(cell)
        if args.markdown == "-":
            print(markdown_table(rounds), file=sys.stderr)
        elif args.markdown:
            with open(args.markdown, "w") as f:
                f.write(markdown_table(rounds))
    if args.results_dir:
        log(f"results appended to {provenance.save_lines(RESULTS, args.results_dir)}")


if __name__ == "__main__":
    main()
