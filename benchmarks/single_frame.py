"""The temporal branch on images: one matrix product against attention over one key.

On a 1-frame input (T = 1 in the static shape) `TimeSformerBlock` computes temporal attention as
the linear map it is there (`cover_tf/layers/timesformer_block.py`). This measures what that
saves: the same model and weights, its blocks once as built and once forced through attention,
on the same random batch of images, both timed in one process, interleaved round by round (on a
shared VM only interleaved comparisons hold). One JSON line per round, then one with the median
ratio per mode; the first line names the machine and its measured matmul peaks
(benchmarks/throughput.py's machine record: also the date, the commit and the command).

    python benchmarks/single_frame.py [--config configs/demo.yaml] [--batch 64] [--rounds 5]
    python benchmarks/single_frame.py --mixed [--rounds 25] [--calls 40]
    python benchmarks/single_frame.py --results-dir benchmarks/results   # also append the lines

"train" is a forward and backward pass (gradients of every trainable variable, no optimizer
update); "infer" a forward pass in inference mode. `--mixed` times whole training steps of
Keras `fit` (its own train function: forward, backward, update, metrics) on the config's mixed
stream, its first `--batches` batches cached in memory so that the input pipeline is out of the
comparison: Keras' stock `train_step` (one trace for images and clips: the images' temporal
branch as attention) against the trainer's (one-frame batches on their own trace: the product);
wall and process CPU milliseconds per step. Timings are never asserted by tests.
"""

import argparse
import json
import os
import statistics
import sys
import time
import types

import cover_tf  # noqa: F401  (before TensorFlow: its oneDNN choice, cover_tf.cpu)

# isort: split
import keras
import numpy as np
import tensorflow as tf

from cover_tf.config import load_config
from cover_tf.training.model_factory import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import throughput  # noqa: E402  (benchmarks/throughput.py: the machine line and its peaks)

LINES = []  # every line printed, for --results-dir


def emit(record):
    LINES.append(record)
    print(json.dumps(record), flush=True)


def machine_line():
    """throughput.py's machine record: CPU model, ISA flags, cores, versions and TF's measured
    fp32 / bf16 matmul peaks (a fresh interpreter; several sizes, warm, best of N). Both
    variants here run with TensorFlow's default thread pools."""
    args = throughput.parse_args([])  # its defaults: threads = cores, inter_op 1, its peak sizes
    record = throughput.machine_record(args, throughput.measure_peaks(args))
    record["threads"] = "tensorflow defaults (the peaks: intra_op = cores, inter_op = 1)"
    return record


def attention_everywhere(model):
    """Forces every block's temporal branch through attention (this model instance only)."""
    for block in model.backbone.blocks:
        block._temporal = lambda tokens, training, seed=None, block=block: (
            tokens + block._attention_residual(tokens, training, seed)
        )


def steps(model, images, head):
    """(train, infer) tf.functions of `model` on `images`."""

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(images, training=True)[head]))
        return loss, tape.gradient(loss, model.trainable_variables)

    @tf.function
    def infer():
        return model(images, training=False)[head]

    return {"train": train, "infer": infer}


def timed(function, calls):
    start = time.perf_counter()
    for _ in range(calls):
        result = function()
    tf.nest.map_structure(lambda value: value.numpy(), result)
    return 1000 * (time.perf_counter() - start) / calls


def mixed_rounds(config, rounds, calls, num_batches):
    """JSON rows of whole `fit` training steps, Keras' stock step against the trainer's, and the
    median ratios (see the module docstring)."""
    from cover_tf.data import mixing
    from cover_tf.training.compile import compile_model
    from cover_tf.training.loop import prepare_datasets

    datasets, _ = prepare_datasets(config)
    heads = {cfg.name: cfg.num_classes for cfg in datasets}
    stream = mixing.train_dataset(
        datasets,
        config.mixing,
        config.model.pixel_mean,
        config.model.pixel_std,
        steps_per_epoch=config.train.steps_per_epoch,
    )
    cached = stream.take(num_batches).cache()
    for _ in cached:  # fills the cache
        pass
    variants = {}
    for name in ("trainer", "stock"):
        keras.utils.set_random_seed(0)
        model = build_model(config.model, heads)
        compile_model(model, config.optimizer, config.train.steps)
        if name == "stock":
            model.train_step = types.MethodType(
                lambda self, data: type(self).train_step(self, data), model
            )
        iterator = iter(cached.repeat())
        start = time.perf_counter()
        model.make_train_function()
        function = model.train_function
        float(function(iterator)["loss"])
        first_s = time.perf_counter() - start
        for _ in range(10):
            function(iterator)
        variants[name] = (function, iterator)
        emit({"variant": name, "first_step_s": round(first_s, 2)})
    ratios = {"wall": [], "cpu": []}
    for index in range(rounds):
        row = {"round": index, "steps": calls}
        for name, (function, iterator) in variants.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                logs = function(iterator)
            float(logs["loss"])
            row[f"step_ms/{name}"] = round(1000 * (time.perf_counter() - wall) / calls, 1)
            row[f"step_cpu_ms/{name}"] = round(1000 * (time.process_time() - cpu) / calls, 1)
        ratios["wall"].append(row["step_ms/trainer"] / row["step_ms/stock"])
        ratios["cpu"].append(row["step_cpu_ms/trainer"] / row["step_cpu_ms/stock"])
        emit(row)
    summary = {f"{kind}_ratio_median": round(statistics.median(v), 3) for kind, v in ratios.items()}
    summary.update({f"{kind}_rounds_faster": sum(r < 1 for r in v) for kind, v in ratios.items()})
    emit({"summary": True, "rounds": rounds, **summary})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "demo.yaml"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20, help="timed calls per round and variant")
    parser.add_argument("--mixed", action="store_true", help="whole fit steps on the mixed stream")
    parser.add_argument("--batches", type=int, default=300, help="--mixed: batches cached")
    parser.add_argument(
        "--results-dir",
        help="also append the lines to DIR/single_frame[_mixed]_<machine>_<date>.jsonl",
    )
    args = parser.parse_args(argv)
    run(args)
    if args.results_dir:
        prefix = "single_frame_mixed_" if args.mixed else "single_frame_"
        path = throughput.provenance.save_lines(LINES, args.results_dir, prefix)
        print(f"[single_frame] results appended to {path}", file=sys.stderr, flush=True)
    return 0


def run(args):
    config = load_config(args.config)
    emit(machine_line())
    if args.mixed:
        mixed_rounds(config, args.rounds, args.calls, args.batches)
        return
    heads = {"images": 10}
    size = config.model.image_size
    images = tf.random.stateless_normal((args.batch, 1, size, size, 3), seed=(0, 1))
    variants = {}
    for name in ("product", "attention"):
        keras.utils.set_random_seed(0)
        model = build_model(config.model, heads)
        if name == "attention":
            attention_everywhere(model)
        variants[name] = steps(model, images, "images")
    models_agree = np.allclose(
        variants["product"]["infer"]().numpy(), variants["attention"]["infer"]().numpy(), atol=1e-4
    )
    for functions in variants.values():  # trace and warm
        for function in functions.values():
            timed(function, 3)
    ratios = {"train": [], "infer": []}
    for index in range(args.rounds):
        row = {"round": index, "batch": args.batch}
        for mode in ratios:
            for name, functions in variants.items():
                row[f"{mode}_ms/{name}"] = round(timed(functions[mode], args.calls), 2)
            ratios[mode].append(row[f"{mode}_ms/product"] / row[f"{mode}_ms/attention"])
        emit(row)
    summary = {f"{mode}_ratio_median": round(statistics.median(v), 3) for mode, v in ratios.items()}
    summary.update({f"{mode}_ratio_range": [round(min(v), 3), round(max(v), 3)] for mode, v in ratios.items()})  # fmt: skip
    emit({"summary": True, "outputs_agree": bool(models_agree), **summary})


if __name__ == "__main__":
    sys.exit(main())
