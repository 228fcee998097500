"""Where a step's time goes: TF profiler trace of a few steps, CPU time per op type.

Builds the same model and step as `throughput.py` (one config, mode, precision, XLA choice),
runs the first call and `--warmup` steps untraced, traces `--steps` steps with
`tf.profiler.experimental`, and sums the durations of the executed TensorFlow ops by op type
(from the trace's `.xplane.pb`, read with TF's own protobuf). One JSON line per op type, largest
first, then a `total` line; `share` is of all traced op time (summed over threads, so it can
exceed wall time).

    python benchmarks/profile_ops.py --config tiny --mode train --precision bf16 [--top 20]

With `--kernel-ab N` it instead times the step with the layers' XLA kernels against the same
step traced as plain TensorFlow ops (`backend_ops.portable_graph`), N pairs alternating in one
process, so that a shared machine's drift hits both alike: one `kernel_ab` line with each
side's step times and the median of the pairs' ratios plain / kernels (above 1: the kernels are
faster).
"""

import argparse
import collections
import glob
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import throughput  # noqa: E402


def op_seconds(logdir):
    """{op type: seconds} over every thread of the host plane of the trace in `logdir`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    totals = collections.Counter()
    for path in glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as file:
            space.ParseFromString(file.read())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            for line in plane.lines:
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    # executed ops are named "<op name>:<op type>"; skip other trace events
                    # (the executor's "Run" / "Process" spans enclose the ops)
                    op_type = name.rsplit(":", 1)[1] if ":" in name else ""
                    if op_type.lstrip("_")[:1].isupper() and op_type not in ("Run", "Process"):
                        totals[op_type] += event.duration_ps / 1e12
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny", choices=sorted(throughput.CONFIGS))
    parser.add_argument("--mode", default="train", choices=("infer", "train"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--xla", default="off", choices=("off", "on"))
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--kernel-ab", type=int, default=0, metavar="N")
    args = parser.parse_args()
    config = throughput.model_config(args.config)
    spec = {
        "model_config": config, "mode": args.mode, "precision": args.precision,
        "xla": args.xla, "batch": args.batch or config[f"batch_{args.mode}"],
        "threads": args.threads, "inter_op_threads": 1,
    }  # fmt: skip
    _, step = throughput.build_step(spec)
    if args.kernel_ab:
        return kernel_ab(args, spec, step)
    import tensorflow as tf

    for _ in range(1 + args.warmup):
        step()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(args.steps):
            step()
        tf.profiler.experimental.stop()
        totals = op_seconds(logdir)
    total = sum(totals.values())
    common = {key: spec[key] for key in ("mode", "precision", "xla", "batch")}
    for op_type, seconds in totals.most_common(args.top):
        print(json.dumps({"kind": "op", "config": args.config, **common, "op": op_type,
                          "ms_per_step": round(1e3 * seconds / args.steps, 2),
                          "share": round(seconds / total, 4)}))  # fmt: skip
    print(json.dumps({"kind": "total", "config": args.config, **common,
                      "op_ms_per_step": round(1e3 * total / args.steps, 2)}))  # fmt: skip


def kernel_ab(args, spec, step):
    """Print one `kernel_ab` line: `step` (XLA kernels) against a second model's step traced
    under `portable_graph` (plain ops), `args.kernel_ab` pairs in alternating order."""
    from cover_tf.layers.backend_ops import portable_graph

    _, plain = throughput.build_step(spec)
    with portable_graph():
        plain()  # traces the plain-op step
    for _ in range(1 + args.warmup):
        step()
        plain()
    times = {"kernels": [], "plain": []}
    for index in range(args.kernel_ab):
        for name in ("kernels", "plain") if index % 2 == 0 else ("plain", "kernels"):
            start = time.perf_counter()
            (step if name == "kernels" else plain)()
            times[name].append(round(1e3 * (time.perf_counter() - start), 2))
    ratios = [p / k for p, k in zip(times["plain"], times["kernels"], strict=True)]
    common = {key: spec[key] for key in ("mode", "precision", "xla", "batch", "threads")}
    print(json.dumps({"kind": "kernel_ab", "config": args.config, **common,
                      "kernels_ms": times["kernels"], "plain_ms": times["plain"],
                      "plain_over_kernels_median": round(statistics.median(ratios), 3),
                      "machine": throughput.machine_name(*throughput.cpu_info()[:2])}))  # fmt: skip


if __name__ == "__main__":
    main()
