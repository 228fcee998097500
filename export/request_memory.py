"""Peak resident memory of one request to a CoVeR export, as a model server holds it.

    python export/request_memory.py EXPORT_DIR [--signature NAME] [--batch 1] [--frames 256]
        [--height 1080] [--width 1920]

Loads the SavedModel, warms the signature up, then builds the request's wire bytes
(a serialized `PredictRequest` holding uint8 frames [B, T, H, W, 3]) and measures, from there
on, what serving it adds to the process's resident memory: parsing the request, the input
tensor, the signature's run (Linux: the peak is reset through /proc/self/clear_refs and read
from VmHWM). Prints one JSON object: input_bytes, base_rss_bytes, peak_rss_bytes, added_bytes,
added_per_input_byte. `cover_tf.serving.limits.PEAK_BYTES_PER_INPUT_BYTE` comes from this.
"""

import argparse
import json
import pathlib
import sys

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2


def _status_bytes(field: str) -> int:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="request_memory.py", description=__doc__)
    parser.add_argument("export")
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--width", type=int, default=1920)
    args = parser.parse_args(argv)
    loaded = tf.saved_model.load(args.export)
    signature = loaded.signatures[args.signature]
    signature(frames=tf.fill([1, 2, 64, 64, 3], tf.constant(128, tf.uint8)))
    shape = (args.batch, args.frames, args.height, args.width, 3)
    request = predict_pb2.PredictRequest()
    request.inputs["frames"].CopyFrom(tf.make_tensor_proto(np.full(shape, 128, np.uint8)))
    wire = request.SerializeToString()
    del request
    base = _status_bytes("VmRSS")
    pathlib.Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    received = predict_pb2.PredictRequest.FromString(wire)
    frames = tf.constant(tf.make_ndarray(received.inputs["frames"]))
    outputs = signature(frames=frames)
    _ = {key: value.numpy() for key, value in outputs.items()}
    peak = _status_bytes("VmHWM")
    input_bytes = int(np.prod(shape))
    print(
        json.dumps(
            {
                "shape": list(shape),
                "signature": args.signature,
                "input_bytes": input_bytes,
                "base_rss_bytes": base,
                "peak_rss_bytes": peak,
                "added_bytes": peak - base,
                "added_per_input_byte": round((peak - base) / input_bytes, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
