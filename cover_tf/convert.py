"""Checkpoint import: `python -m cover_tf.convert --checkpoint SRC --out MODEL.keras ...`.

Sources (read without pickle):
- an HF TimeSformer `save_pretrained` directory (config.json + model.safetensors): the result
  reproduces the HF logits through one head, named by `--head`;
- an HF ViT directory or an original ViT release `.npz`: a TimeSformer initialised the reference
  way (spatial attention and norm copied into the temporal ones, `temporal_fc` and the time
  embedding zero, position embedding resized), with new heads from `--heads name=N,...`.

Examples:
    python -m cover_tf.convert --checkpoint hf-timesformer-k400/ --head kinetics400 --out k400.keras
    python -m cover_tf.convert --checkpoint ViT-B_16.npz --heads kinetics400=400,ssv2=174 \
        --num-frames 8 --image-size 224 --out cover_init.keras

A checkpoint that is missing, of another kind or does not fit, or an --out that cannot be
written, ends with `convert: error: <one sentence>` on stderr and exit status 2, before the
conversion when it can be told then (--verbose: the traceback too).
"""

import argparse
import json
import pathlib
import sys

from cover_tf import cli
from cover_tf.export import check_output
from cover_tf.layers import ATTENTION_TYPES
from cover_tf.models.checkpoints import cover_from_hf_timesformer, cover_from_image_checkpoint

PROG = "convert"


def parse_heads(text):
    """`"k400=400,ssv2=174"` -> `{"k400": 400, "ssv2": 174}`."""
    heads = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, count = item.partition("=")
        if not sep or not count.strip().isdigit():
            raise argparse.ArgumentTypeError(f"--heads item {item!r} is not NAME=NUM_CLASSES")
        heads[name.strip()] = int(count)
    if not heads:
        raise argparse.ArgumentTypeError("--heads needs at least one NAME=NUM_CLASSES")
    return heads


def checkpoint_kind(path):
    """`"timesformer"`, `"vit"` or `"vit_npz"` for a checkpoint path; ValueError otherwise."""
    path = pathlib.Path(path)
    if path.suffix == ".npz" and path.is_file():
        return "vit_npz"
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ValueError(
            f"{path}: expected an HF checkpoint directory with config.json and model.safetensors, "
            "or an original ViT release .npz file"
        )
    model_type = json.loads(config_path.read_text()).get("model_type")
    if model_type in ("timesformer", "vit"):
        return model_type
    raise ValueError(f"{config_path}: model_type {model_type!r} is neither 'timesformer' nor 'vit'")


@cli.command(PROG)
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m cover_tf.convert", description=__doc__.split("\n")[0]
    )
    # Usage mistakes in the commands' one style: `convert: error: <sentence>`, exit 2.
    parser.error = lambda message: sys.exit(cli.fail(PROG, cli.UserError(message)))
    parser.add_argument("--checkpoint", required=True, help="HF checkpoint dir or ViT .npz")
    parser.add_argument("--out", required=True, help="output .keras file")
    parser.add_argument(
        "--head", default="classifier", help="head name for an HF TimeSformer's classifier"
    )
    parser.add_argument(
        "--heads", type=parse_heads, help="new heads NAME=N,... (image checkpoints)"
    )
    parser.add_argument("--num-frames", type=int, default=8, help="clip length (image checkpoints)")
    parser.add_argument(
        "--image-size", type=int, default=None, help="frame side (image checkpoints)"
    )
    parser.add_argument(
        "--attention-type",
        default="divided_space_time",
        choices=ATTENTION_TYPES,
    )
    parser.add_argument("--drop-path-rate", type=float, default=0.0)
    parser.add_argument("--verbose", action="store_true", help="tracebacks of errors")
    args = parser.parse_args(argv)
    if not args.out.endswith(".keras"):
        parser.error(f"--out must end with .keras, got {args.out!r}")
    check_output(args.out, folder=False)
    kind = checkpoint_kind(args.checkpoint)
    if kind == "timesformer":
        model = cover_from_hf_timesformer(args.checkpoint, head_name=args.head)
    else:
        if not args.heads:
            parser.error("an image checkpoint needs --heads NAME=NUM_CLASSES,...")
        model = cover_from_image_checkpoint(
            args.checkpoint,
            args.heads,
            num_frames=args.num_frames,
            image_size=args.image_size,
            attention_type=args.attention_type,
            drop_path_rate=args.drop_path_rate,
        )
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    backbone = model.backbone
    print(
        json.dumps(
            {
                "source": str(args.checkpoint),
                "kind": kind,
                "out": args.out,
                "heads": model.head_classes,
                "hidden_size": backbone.hidden_size,
                "num_layers": backbone.num_layers,
                "num_frames": backbone.num_frames,
                "image_size": backbone.image_size,
                "attention_type": backbone.attention_type,
                "parameters": model.count_params(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
