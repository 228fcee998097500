"""Serving-path throughput: the exported SavedModel's head signature against the model alone.

For each config x precision, in a fresh process: builds the benchmark model (`throughput.py`'s
configs, one 400-class head), exports it with `cover_tf.serving.exporter.export_model` (the
head's eval preprocessing: short side resized to the model's size, centre crop, normalisation;
one view), loads the SavedModel and times its `k400` signature on uint8 frames `[B, T, S, S, 3]`
(S = the model's image size), then times the Keras model alone on the same clips as float frames
(`throughput.py`'s inference step). `preprocess_share` = 1 - model time / signature time. With
`--peer` the HF peer (`peer_timesformer.py`: inference, eager and with `--peer-compile` also
`torch.compile`) runs in the same invocation and each row gets `ratio_vs_peer` = signature
clips/s / the peer's best model-only inference clips/s; `--peer-from FILE` reads the peer's lines
from a `throughput.py` JSON-lines file of the same machine instead. A peer that cannot run ends
the benchmark with one sentence on stderr and a non-zero exit status. The first line is
`throughput.py`'s machine record (CPU, ISA flags, cores, versions, oneDNN, TF's matmul peaks,
date, commit) with `"benchmark": "serving_throughput"`.

    python benchmarks/serving_throughput.py --configs tiny,small --precisions fp32,bf16 --peer
    python benchmarks/serving_throughput.py --configs base --peer-from runs/throughput.jsonl
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import throughput  # noqa: E402

HEAD = "k400"


def measure(spec):
    """One (config, precision) row, in this process."""
    tf = throughput.configure_tensorflow(spec["threads"], spec["inter_op_threads"])
    from cover_tf.serving.exporter import export_model
    from cover_tf.serving.heads import head_specs

    model, model_step = throughput.build_step(spec)
    config, batch = spec["model_config"], spec["batch"]
    shape = (batch, config["num_frames"], config["image_size"], config["image_size"], 3)
    frames = tf.cast(
        tf.random.stateless_uniform(shape, (0, 3), maxval=256, dtype=tf.int32), tf.uint8
    )
    with tempfile.TemporaryDirectory() as base:
        start = time.perf_counter()
        export_model(model, head_specs(model), base, check=False)
        export_s = time.perf_counter() - start
        signature = tf.saved_model.load(os.path.join(base, "1")).signatures[HEAD]

        def serve():
            return signature(frames=frames)["probabilities"].numpy()

        serve()
        serve_s, _ = throughput.time_steps(serve, spec["warmup"], spec["steps"], spec["repeats"])
    model_step()
    model_s, _ = throughput.time_steps(model_step, spec["warmup"], spec["steps"], spec["repeats"])
    return {
        "serving_clips_per_s": batch / serve_s,
        "model_clips_per_s": batch / model_s,
        "preprocess_share": round(1 - model_s / serve_s, 3),
        "export_s": round(export_s, 1),
    }


def peer_best(peers, name, precision):
    """The peer's best model-only inference clips/s (eager or compiled) for a config."""
    rows = [p for p in peers if p.get("config") == name and p.get("precision") == precision]
    runs = [r for p in rows for key in ("infer", "infer_compile") for r in p.get(f"{key}_clips_per_s_runs") or [] if r]  # fmt: skip
    return max(runs, default=None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--configs", default="tiny,small,base")
    add("--precisions", default="fp32,bf16")
    add("--steps", type=int, default=3)
    add("--warmup", type=int, default=1)
    add("--repeats", type=int, default=2)
    add("--threads", type=int, default=os.cpu_count())
    add("--inter-op-threads", type=int, default=1)
    add("--timeout", type=int, default=1800)
    add("--peer", action="store_true", help="run the HF peer in this invocation")
    add("--peer-compile", action="store_true", help="the peer also with torch.compile")
    add("--peer-from", default=None, help="throughput.py JSON lines holding the peer's rows")
    add("--peer-timeout", type=int, default=1800, help="seconds per peer measurement process")
    add("--peak-gflops", type=float, help="fp32 peak GFLOP/s to record instead of measuring")
    add("--peak-bf16-gflops", type=float, help="bf16 peak GFLOP/s to record instead of measuring")
    add("--peak-sizes", default=throughput.PEAK_SIZES, help="as throughput.py's")
    add("--results-dir", help="also append the JSON lines to DIR/<machine>_<date>.jsonl")
    add("--_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.peak_sizes = args.peak_sizes.split(",")
    if args._worker:
        spec = json.loads(args._worker)
        try:
            result = measure(spec)
        except Exception as error:  # reported as a failed measurement, never a crash
            result = {"error": f"{type(error).__name__}: {str(error).strip()[:600]}"}
        throughput.emit(result)
        return 0
    configs, precisions = args.configs.split(","), args.precisions.split(",")
    unknown = sorted(set(configs) - set(throughput.CONFIGS)) + sorted(set(precisions) - {"fp32", "bf16"})  # fmt: skip
    if unknown:
        parser.error(f"unknown configs or precisions {unknown}")
    if args.peer and not args.peer_from:
        problem = throughput.peer_problem()
        if problem:
            return fail(problem, status=2)
    machine = throughput.machine_record(args, throughput.measure_peaks(args))
    throughput.emit(dict(machine, kind="machine", benchmark="serving_throughput"))
    peers = []
    if args.peer_from:
        with open(args.peer_from) as file:
            peers = [row for row in map(json.loads, file) if row.get("kind") == "peer"]
    elif args.peer:
        try:
            for precision in precisions:
                peers += throughput.run_peer(args, precision, args.configs, modes="infer")
        except throughput.PeerError as error:
            return fail(error, status=1)
    for name in configs:
        config = throughput.model_config(name)
        for precision in precisions:
            spec = {
                "model_config": config, "mode": "infer", "precision": precision, "xla": "off",
                "batch": config["batch_infer"], "threads": args.threads,
                "inter_op_threads": args.inter_op_threads, "steps": args.steps,
                "warmup": args.warmup, "repeats": args.repeats,
            }  # fmt: skip
            throughput.log(f"serving {name} {precision} batch={spec['batch']} ...")
            result = throughput.run_worker(spec, args.timeout, script=__file__)
            row = {"kind": "serving", "config": name, "precision": precision, "batch": spec["batch"], **result}  # fmt: skip
            peer = peer_best(peers, name, precision)
            if peer and "error" not in result:
                row["peer_infer_clips_per_s"] = peer
                row["ratio_vs_peer"] = round(result["serving_clips_per_s"] / peer, 3)
            throughput.emit(row)
    if args.results_dir:
        path = throughput.provenance.save_lines(throughput.RESULTS, args.results_dir)
        throughput.log(f"results appended to {path}")
    return 0


def fail(message, status):
    print(f"serving_throughput.py: error: {message}", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
