"""GPU training and inference clips/s and MFU of cover_tf's TimeSformer, beside the HF peer.

On a GPU machine where TensorFlow cannot be installed (the lent benchmark machine has PyTorch and
JAX, no package registry, and TF 2.20's CUDA 12 stack is ~2.5 GB), the same cover_tf model code
runs on Keras' JAX backend: `build_cover_model`, Keras' `mixed_bfloat16` policy, one
XLA-compiled step (forward, sparse cross-entropy on the float32 logits, backward,
`keras.optimizers.AdamW(1e-4)`) through Keras' stateless API. On TensorFlow the step is the one
`benchmarks/throughput.py` times, `jit_compile=True` giving it the same XLA compiler. The peer is
HF transformers' TimesformerForVideoClassification on PyTorch CUDA (bf16 = `torch.autocast`,
AdamW, cross-entropy outside the model), eager and `torch.compile`. Each measurement runs in a
fresh subprocess; JSON lines go to stdout (and `--out`), progress to stderr; the first names the
device, its measured matmul peaks, the date and the commit.

    KERAS_BACKEND=jax python benchmarks/gpu_throughput.py --configs B/16,L/16 --peer
    KERAS_BACKEND=jax python benchmarks/gpu_throughput.py --configs tiny --device cpu --steps 2
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "benchmarks"))
import provenance  # noqa: E402
from throughput import NUM_CLASSES, PATCH_SIZE, check_lists, forward_gflop_per_clip  # noqa: E402

CONFIGS = {  # 8 x 224 clips, the paper's input; "tiny" only to check the script on a CPU
    "B/16": dict(image_size=224, num_frames=8, hidden_size=768, num_layers=12, num_heads=12,
                 mlp_dim=3072, batch_train=32, batch_infer=64),
    "L/16": dict(image_size=224, num_frames=8, hidden_size=1024, num_layers=24, num_heads=16,
                 mlp_dim=4096, batch_train=16, batch_infer=32),
    "tiny": dict(image_size=32, num_frames=2, hidden_size=32, num_layers=2, num_heads=2,
                 mlp_dim=64, batch_train=2, batch_infer=2),
}  # fmt: skip
SIZE_KEYS = ("image_size", "num_frames", "hidden_size", "num_layers", "num_heads", "mlp_dim")


def log(message):
    print(f"[gpu_throughput] {message}", file=sys.stderr, flush=True)


def time_run_block(run_block, spec):
    """Times `run_block(steps)` (seconds per step, waiting for the device): one untimed first
    call (compilation), `warmup` steps, then `repeats` blocks of `steps`; the best block."""
    start = time.perf_counter()
    run_block(1)
    first_call_s = time.perf_counter() - start
    if spec["warmup"]:
        run_block(spec["warmup"])
    blocks = [run_block(spec["steps"]) for _ in range(spec["repeats"])]
    best = min(blocks)
    return {
        "step_ms": best * 1e3, "step_ms_blocks": [round(s * 1e3, 2) for s in blocks],
        "clips_per_s": spec["batch"] / best, "first_call_s": round(first_call_s, 1),
    }  # fmt: skip


# ------------------------------------------------------------------------- cover_tf on JAX
def jax_peak(spec):
    """Best TFLOP/s of 20 n^3 matmuls (4 random operand pairs in turn), bf16 and float32."""
    import jax
    import jax.numpy as jnp

    n, result = spec.get("matmul_size", 8192), {"device_kind": jax.devices()[0].device_kind}
    matmul = jax.jit(lambda a, b: a @ b)
    for name, dtype in (("bf16", jnp.bfloat16), ("fp32", jnp.float32)):
        keys = jax.random.split(jax.random.key(0), 8)
        pairs = [(jax.random.normal(keys[i], (n, n), dtype), jax.random.normal(keys[i + 4], (n, n), dtype))
                 for i in range(4)]  # fmt: skip
        jax.block_until_ready(matmul(*pairs[0]))
        times = []
        for index in range(20):
            start = time.perf_counter()
            jax.block_until_ready(matmul(*pairs[index % 4]))
            times.append(time.perf_counter() - start)
        result[f"peak_{name}_tflops"] = 2 * n**3 / min(times) / 1e12
    return result


def jax_model_step(spec):
    """The model and a function running `steps` steps and returning their seconds."""
    import jax
    import keras
    from keras import ops

    sys.path.insert(0, REPO_ROOT)
    from cover_tf.models import build_cover_model

    config, batch = spec["model_config"], spec["batch"]
    model = build_cover_model(
        {"k400": NUM_CLASSES},
        patch_size=PATCH_SIZE,
        dtype="mixed_bfloat16" if spec["precision"] == "bf16" else None,
        remat=spec["remat"],
        **{key: config[key] for key in SIZE_KEYS},
    )
    key_x, key_y = jax.random.split(jax.random.key(1))
    shape = (batch, config["num_frames"], config["image_size"], config["image_size"], 3)
    frames = jax.random.normal(key_x, shape)
    labels = jax.random.randint(key_y, (batch,), 0, NUM_CLASSES)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    if spec["mode"] == "infer":

        @jax.jit
        def forward(trainable, non_trainable, x):
            outputs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return outputs["k400"]

        def step(state):
            return state, forward(trainable, non_trainable, frames)

        state = None
    else:
        optimizer = keras.optimizers.AdamW(1e-4)
        optimizer.build(model.trainable_variables)

        def loss_of(trainable, non_trainable, x, y):
            outputs, non_trainable = model.stateless_call(
                trainable, non_trainable, x, training=True
            )
            logits = ops.cast(outputs["k400"], "float32")
            loss = ops.mean(
                keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            )
            return loss, non_trainable

        gradient = jax.value_and_grad(loss_of, has_aux=True)

        def train_step(state, x, y):
            trainable, non_trainable, optimizer_state = state
            (loss, non_trainable), grads = gradient(trainable, non_trainable, x, y)
            trainable, optimizer_state = optimizer.stateless_apply(
                optimizer_state, grads, trainable
            )
            return (trainable, non_trainable, optimizer_state), loss

        compiled_step = jax.jit(train_step, donate_argnums=0)  # weights updated in place

        def step(state):
            return compiled_step(state, frames, labels)

        state = (trainable, non_trainable, [v.value for v in optimizer.variables])
    holder = {"state": state}

    def run_block(steps):
        start = time.perf_counter()
        for _ in range(steps):
            holder["state"], out = step(holder["state"])
        jax.block_until_ready(out)
        return (time.perf_counter() - start) / steps

    return model, run_block


def jax_measure(spec):
    import jax

    model, run_block = jax_model_step(spec)
    result = time_run_block(run_block, spec)
    stats = jax.devices()[0].memory_stats() or {}
    return {
        **result, "params_m": round(model.count_params() / 1e6, 2),
        "peak_device_mib": round(stats.get("peak_bytes_in_use", 0) / 2**20),
    }  # fmt: skip


# ----------------------------------------------------------------- the HF peer on PyTorch
def torch_measure(spec):
    import torch
    from transformers import TimesformerConfig, TimesformerForVideoClassification

    config, batch, device = spec["model_config"], spec["batch"], spec["device"]
    torch.backends.cuda.matmul.allow_tf32 = True  # as XLA's default float32 dots on GPU
    hf_config = TimesformerConfig(
        image_size=config["image_size"], patch_size=PATCH_SIZE, num_frames=config["num_frames"],
        hidden_size=config["hidden_size"], num_hidden_layers=config["num_layers"],
        num_attention_heads=config["num_heads"], intermediate_size=config["mlp_dim"],
        num_labels=NUM_CLASSES, attention_type="divided_space_time", hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, drop_path_rate=0,
    )  # fmt: skip
    model = TimesformerForVideoClassification(hf_config).to(device)
    T, H = config["num_frames"], config["image_size"]
    frames = torch.randn(batch, T, 3, H, H, device=device)
    labels = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=spec["precision"] == "bf16")
    forward = torch.compile(model) if spec["variant"] == "compiled" else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        if spec["mode"] == "infer":
            with torch.no_grad(), autocast:
                return forward(pixel_values=frames).logits
        with autocast:
            logits = forward(pixel_values=frames).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def run_block(steps):
        synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize()
        return (time.perf_counter() - start) / steps

    model.train(spec["mode"] == "train")
    result = time_run_block(run_block, spec)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else 0
    return {
        **result, "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "peak_device_mib": round(peak / 2**20), "torch": torch.__version__,
    }  # fmt: skip


def worker_main(spec):
    try:
        if spec["task"] == "peak":
            result = jax_peak(spec)
        elif spec["impl"] == "cover_tf":
            result = jax_measure(spec)
        else:
            result = torch_measure(spec)
    except Exception as error:  # reported as a failed measurement, never a crash
        result = {"error": f"{type(error).__name__}: {str(error).strip()[:800]}"}
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- driver side
def run_worker(spec, timeout):
    command = [sys.executable, os.path.abspath(__file__), "--_worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-4:])[-800:]
        return {"error": f"worker exit code {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def is_out_of_memory(record):
    error = record.get("error", "")
    return "RESOURCE_EXHAUSTED" in error or "out of memory" in error.lower()


def measure(args, plan_item, peaks, emit):
    """One measurement; the batch is halved while the device runs out of memory."""
    impl, name, mode, precision, variant = plan_item
    config = dict(CONFIGS[name], num_frames=args.frames or CONFIGS[name]["num_frames"])
    batch = config[f"batch_{mode}"] if args.batch is None else args.batch
    while True:
        spec = {"task": "model", "impl": impl, "model_config": config, "mode": mode,
                "precision": precision, "variant": variant, "batch": batch, "steps": args.steps,
                "warmup": args.warmup, "repeats": args.repeats, "remat": args.remat,
                "device": args.device}  # fmt: skip
        log(f"{impl} {name} {mode} {precision} {variant} batch={batch} ...")
        record = {"kind": "measurement", "impl": impl, "config": name, "mode": mode,
                  "precision": precision, "variant": variant, "batch": batch,
                  "num_frames": config["num_frames"], "remat": args.remat and impl == "cover_tf"}  # fmt: skip
        record.update(run_worker(spec, args.timeout))
        if not is_out_of_memory(record) or batch == 1:
            break
        emit(record)
        batch //= 2
    if "error" in record:
        log(f"  -> ERROR {record['error'][:400]}")
        return record
    gflop = forward_gflop_per_clip(config)
    gflop *= 3 if mode == "train" else 1
    peak = peaks.get(f"peak_{precision}_tflops")
    record["gflop_per_clip"] = round(gflop, 1)
    record["achieved_tflops"] = round(gflop * record["clips_per_s"] / 1e3, 2)
    record["mfu"] = round(record["achieved_tflops"] / peak, 3) if peak else None
    log(f"  -> {record['clips_per_s']:.1f} clips/s, MFU {record['mfu']}, "
        f"{record['peak_device_mib']} MiB, first call {record['first_call_s']} s")  # fmt: skip
    return record


def plan(args):
    """(impl, config, mode, precision, variant) in priority order: ours and the peer's eager
    run pair by pair first, the peer's torch.compile runs (long compiles) last."""
    items = []
    for name in args.configs.split(","):
        for mode in args.modes.split(","):
            for precision in args.precisions.split(","):
                items.append(("cover_tf", name, mode, precision, "xla"))
                if args.peer:
                    items.append(("hf_peer", name, mode, precision, "eager"))
    if args.peer and args.peer_compile:
        items += [("hf_peer", n, m, p, "compiled") for _, n, m, p, v in items if v == "eager"]
    return items


def ratio_lines(records):
    ours = [r for r in records if r["impl"] == "cover_tf" and "error" not in r]
    for record in ours:
        key = row_key(record)
        peers = [r for r in records if r["impl"] == "hf_peer" and "error" not in r
                 and row_key(r) == key]  # fmt: skip
        if not peers:
            continue
        best = max(peers, key=lambda r: r["clips_per_s"])
        yield {"kind": "ratio", "config": key[0], "num_frames": key[1], "mode": key[2],
               "precision": key[3], "batch": key[4], "remat": record["remat"], "ours_clips_per_s": record["clips_per_s"],
               "peer_clips_per_s": best["clips_per_s"], "peer_variant": best["variant"],
               "ratio": round(record["clips_per_s"] / best["clips_per_s"], 3)}  # fmt: skip


def row_key(record):
    frames = record.get("num_frames") or CONFIGS[record["config"]]["num_frames"]
    return record["config"], frames, record["mode"], record["precision"], record["batch"]


def pick(records, key, impl, variant):
    """The last successful record of `impl`'s `variant` for `key` (see `row_key`)."""
    found = [r for r in records if row_key(r) == key and r["impl"] == impl
             and r["variant"] == variant and "error" not in r]  # fmt: skip
    return found[-1] if found else None


def markdown_table(records):
    """One row per (config, mode, precision, batch); MFU against the highest matmul peak that the
    `machine` lines among `records` measured (one run's peak measurement varies by ~10%)."""
    peaks = {}
    for machine in (r for r in records if r.get("kind") == "machine"):
        for precision in ("bf16", "fp32"):
            peak = machine.get(f"peak_{precision}_tflops") or 0
            peaks[precision] = max(peaks.get(precision, 0), peak)

    def cell(record, field, fmt):
        if record is not None and field == "mfu" and peaks.get(record["precision"]):
            return format(record["achieved_tflops"] / peaks[record["precision"]], fmt)
        return "-" if record is None or record.get(field) is None else format(record[field], fmt)

    lines = ["| config | frames | mode | precision | batch | ours clips/s | ours MFU | ours GiB "
             "| peer eager | peer compiled | peer MFU (best) | ratio |", "|" + "---|" * 12]  # fmt: skip
    records = [r for r in records if r.get("kind") == "measurement" and not r.get("remat")]
    for key in dict.fromkeys(row_key(r) for r in records):
        ours = pick(records, key, "cover_tf", "xla")
        eager, compiled = pick(records, key, "hf_peer", "eager"), pick(records, key, "hf_peer", "compiled")  # fmt: skip
        peers = [r for r in (eager, compiled) if r]
        best = max(peers, key=lambda r: r["clips_per_s"]) if peers else None
        ratio = ours["clips_per_s"] / best["clips_per_s"] if ours and best else None
        gib = ours["peak_device_mib"] / 1024 if ours else None
        lines.append("| " + " | ".join([
            *map(str, key), cell(ours, "clips_per_s", ".1f"),
            cell(ours, "mfu", ".2f"), "-" if gib is None else f"{gib:.1f}",
            cell(eager, "clips_per_s", ".1f"), cell(compiled, "clips_per_s", ".1f"),
            cell(best, "mfu", ".2f"), "-" if ratio is None else f"{ratio:.2f}"]) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def importable(name):
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def fail(message, status=2):
    """Ends the benchmark: `gpu_throughput.py: error: <sentence>` on stderr."""
    print(f"gpu_throughput.py: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--configs", default="B/16,L/16", help="comma list of " + ",".join(CONFIGS))
    add("--modes", default="train,infer", help="comma list of train,infer")
    add("--precisions", default="bf16", help="comma list of bf16,fp32")
    add("--batch", type=int, help="batch of every measurement (default: the config's)")
    add("--frames", type=int, help="clip length of every measurement (default: the config's)")
    add("--steps", type=int, default=10, help="steps per timed block")
    add("--warmup", type=int, default=3, help="untimed steps after the compiling one")
    add("--repeats", type=int, default=3, help="timed blocks (best taken)")
    add("--remat", action="store_true", help="rematerialise cover_tf's blocks in training")
    add("--peer", action="store_true", help="also measure HF TimeSformer on PyTorch")
    add("--peer-compile", action="store_true", help="also the peer under torch.compile")
    add("--device", default="cuda", help="the peer's torch device (cpu to check the script)")
    add("--timeout", type=int, default=600, help="seconds per measurement subprocess")
    add("--budget-s", type=float, help="skip measurements that would start after this many s")
    add("--out", help="also append the JSON lines to this file")
    add("--markdown", help="write the table to this file (and stderr)")
    add("--table-from", help="only print the table of a JSON lines file this script wrote")
    add("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    check_lists(parser, args, CONFIGS, {"precisions": "bf16 fp32", "modes": "train infer"})
    return args


def main():
    args = parse_args()
    if args._worker:
        worker_main(json.loads(args._worker))
        return
    if args.table_from:
        with open(args.table_from) as f:
            print(markdown_table([json.loads(line) for line in f if line.strip()]), end="")
        return
    if os.environ.get("KERAS_BACKEND") != "jax":
        fail("set KERAS_BACKEND=jax: this benchmark runs cover_tf's model on Keras' JAX backend")
    if args.peer:
        missing = [name for name in ("torch", "transformers") if not importable(name)]
        if missing:
            fail(f"--peer runs HF TimeSformer on torch and transformers, and this Python cannot "
                 f"import {' or '.join(missing)}")  # fmt: skip
    start = time.monotonic()

    def emit(record):
        line = json.dumps(record)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")

    peaks = run_worker({"task": "peak", "matmul_size": 8192 if args.device == "cuda" else 512}, args.timeout)  # fmt: skip
    emit({"kind": "machine", "date": provenance.today(), **provenance.git_commit(),
          "command": provenance.command(), **peaks})  # fmt: skip
    records = []
    for item in plan(args):
        if args.budget_s and time.monotonic() - start > args.budget_s:
            emit({"kind": "skipped", "item": item, "reason": f"past --budget-s {args.budget_s}"})
            continue
        record = measure(args, item, peaks, emit)
        emit(record)
        records.append(record)
        if record["impl"] == "hf_peer" and "error" in record:
            fail(f"the HF peer failed ({' '.join(item[1:])}): {record['error']}", status=1)
    for line in ratio_lines(records):
        emit(line)
    table = markdown_table([{"kind": "machine", **peaks}, *records])
    print(table, file=sys.stderr)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
