"""Send one video to a TF Serving model server holding a CoVeR export; print the answer as JSON.

    python export/serving_client.py VIDEO [--head NAME | --embedding] [--grpc localhost:8500 |
        --rest http://localhost:8501] [--model cover] [--jpeg] [--short-side 256]
        [--max-frames 256] [--top 5] [--rest-format inputs|instances] [--timeout 30]

The video is decoded with PyAV (`cover_tf.builders.video_decode.decode_video`); its frames go,
as uint8 [1, T, H, W, 3], to signature `<head>`, or JPEG-encoded ([1, T] strings, `--jpeg`) to
`<head>_jpeg`; without --head to `serving_default`, which answers for every head. The server runs
the eval preprocessing. Prints {"video", "signature", "frames", "latency_ms", "heads": {head:
[{"index", "class", "probability"}]}}; with --embedding the frames go to `embedding` (or
`embedding_jpeg`) and the answer holds "embedding": [D floats, L2-normalised] instead of "heads".
A refused request prints {"error", "code"} and exits 1.
"""

import argparse
import json
import sys
import time

from cover_tf.builders.video_decode import VideoDecodeError, decode_video
from cover_tf.serving import client, signatures


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="serving_client.py", description=__doc__)
    parser.add_argument("video")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--head", help="the head (signature) to ask; default: every head")
    target.add_argument(
        "--embedding", action="store_true", help="ask the embedding signature instead of a head"
    )
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--grpc", default="localhost:8500", help="gRPC host:port")
    transport.add_argument("--rest", help="REST base URL, e.g. http://localhost:8501")
    parser.add_argument("--model", default="cover", help="model name in models.config")
    parser.add_argument("--jpeg", action="store_true", help="send JPEG frames to <head>_jpeg")
    parser.add_argument("--rest-format", default="inputs", choices=client.REST_FORMATS)
    parser.add_argument("--short-side", type=int, help="resize frames when decoding")
    parser.add_argument("--max-frames", type=int, default=256, help="frames decoded at most")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.jpeg and not (args.head or args.embedding):
        parser.error("--jpeg needs --head or --embedding (serving_default takes uint8 frames)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        frames, _ = decode_video(args.video, short_side=args.short_side, max_frames=args.max_frames)
    except VideoDecodeError as error:
        print(json.dumps({"video": args.video, "error": str(error), "code": "decode"}))
        return 1
    if args.embedding:
        signature = signatures.EMBEDDING_SIGNATURE + (signatures.JPEG_SUFFIX if args.jpeg else "")
    elif args.head is None:
        signature = signatures.DEFAULT_SIGNATURE
    else:
        signature = args.head + (signatures.JPEG_SUFFIX if args.jpeg else "")
    inputs = client.request_inputs(frames, jpeg=args.jpeg)
    start = time.perf_counter()
    try:
        if args.rest:
            outputs = client.rest_predict(
                args.rest, args.model, signature, inputs, args.rest_format, args.timeout
            )
        else:
            outputs = client.grpc_predict(args.grpc, args.model, signature, inputs, args.timeout)
    except client.ServingError as error:
        print(json.dumps({"video": args.video, "error": error.message, "code": error.code}))
        return 1
    latency_ms = 1000 * (time.perf_counter() - start)
    answer = {
        "video": args.video,
        "signature": signature,
        "frames": list(frames.shape),
        "latency_ms": round(latency_ms, 2),
    }
    if args.embedding:
        print(json.dumps({**answer, "embedding": client.embedding(outputs)[0].tolist()}))
        return 0
    if args.head is None:
        heads = sorted(
            key[: -len("_probabilities")] for key in outputs if key.endswith("_probabilities")
        )
        answers = {head: client.top_classes(outputs, args.top, prefix=head + "_") for head in heads}
    else:
        answers = {args.head: client.top_classes(outputs, args.top)}
    print(json.dumps({**answer, "heads": answers}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
