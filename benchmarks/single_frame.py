"""The temporal branch on images: one matrix product against attention over one key.

On a 1-frame input (T = 1 in the static shape) `TimeSformerBlock` computes temporal attention as
the linear map it is there (README, "Using the model"). This measures what that saves: the same
model and weights, its blocks once as built and once forced through attention, on the same
random batch of images, both timed in one process, interleaved round by round (the machines
these figures come from are noisy VMs: only interleaved comparisons hold). One JSON line per
round, then one with the median ratio per mode; the first line names the machine.

    python benchmarks/single_frame.py [--config configs/demo.yaml] [--batch 64] [--rounds 5]

"train" is a forward and backward pass (gradients of every trainable variable, no optimizer
update); "infer" a forward pass in inference mode. Timings are never asserted by tests.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from cover_tf.config import load_config
from cover_tf.training.model_factory import build_model
from cover_tf.training.precision import cpu_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "demo.yaml"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20, help="timed calls per round and variant")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    cpu, flags = cpu_flags()
    machine = {
        "machine": cpu,
        "flags": sorted(flag for flag in flags if flag.startswith(("avx2", "avx512", "amx"))),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }
    print(json.dumps(machine), flush=True)
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
        print(json.dumps(row), flush=True)
    summary = {f"{mode}_ratio_median": round(statistics.median(v), 3) for mode, v in ratios.items()}
    summary.update({f"{mode}_ratio_range": [round(min(v), 3), round(max(v), 3)] for mode, v in ratios.items()})  # fmt: skip
    print(json.dumps({"summary": True, "outputs_agree": bool(models_agree), **summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
