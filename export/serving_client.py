"""Send a video to a TF Serving model server holding a CoVeR export; print the answer as JSON.

    python export/serving_client.py VIDEO [--head NAME | --embedding] [--grpc localhost:8500 |
        --rest http://localhost:8501] [--model cover] [--jpeg] [--short-side 256]
        [--max-frames 256] [--first-clip] [--max-pixels N] [--max-request-bytes N]
        [--no-downscale] [--top 5] [--rest-format inputs|instances] [--timeout 30]

The whole video is sent: it is streamed with PyAV (`cover_tf.serving.video_stream`, memory of one
window whatever its length) and cut into windows of --max-frames frames, one request each. Each
window's frames go, as uint8 [1, T, H, W, 3], to signature `<head>`, or JPEG-encoded ([1, T]
strings, `--jpeg`) to `<head>_jpeg`; without --head to `serving_default`, which answers for every
head. The server runs the eval preprocessing. The answer averages the windows' probabilities
(classes ranked as the server's top_k outputs are, as many as they hold) or, with --embedding
(signature `embedding` / `embedding_jpeg`), their embeddings, L2-normalised again.

Frames over the export's limits are shrunk on this side to fit: --max-pixels (height x width) and
--max-request-bytes (a window's uint8 frames), by default an export's default limits; the answer
then says "resized". --no-downscale sends them as decoded (the server refuses them).

Prints {"video", "signature", "frames" [T, H, W, 3] (every frame sent), "windows", "duration",
"covered" [[start, end]] seconds, "damaged" [[start, end]] (seconds a damaged file's decoder
refused: skipped, decoding resumes after them), "latency_ms" (all requests), "heads": {head:
[{"index", "class", "probability"}]}} or "embedding": [D floats] instead of "heads".
--first-clip sends only the first window ("first_clip": true; "covered" says what it covered).
A refused request or an unreadable file prints {"video", "error", "code"} and exits 1.
"""

import argparse
import json
import sys
import time

import numpy as np

from cover_tf.builders.video_decode import VideoDecodeError
from cover_tf.serving import client, signatures
from cover_tf.serving.limits import ServingLimits
from cover_tf.serving.video_stream import VideoStream, add_span, sliding_windows, subtract_spans

DEFAULT_LIMITS = ServingLimits()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="serving_client.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    parser.add_argument("--max-frames", type=int, default=256, help="frames per request")
    parser.add_argument(
        "--first-clip", action="store_true", help="send only the first --max-frames frames"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_LIMITS.max_pixels,
        help="shrink larger frames (height x width) to fit (default: an export's default)",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_LIMITS.max_request_bytes,
        help="shrink frames so that a window's uint8 frames fit (default: an export's default)",
    )
    parser.add_argument(
        "--no-downscale", action="store_true", help="send frames as decoded, whatever their size"
    )
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.jpeg and not (args.head or args.embedding):
        parser.error("--jpeg needs --head or --embedding (serving_default takes uint8 frames)")
    for name in ("max_frames", "max_pixels", "max_request_bytes", "top"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def signature_name(args) -> str:
    if args.embedding:
        return signatures.EMBEDDING_SIGNATURE + (signatures.JPEG_SUFFIX if args.jpeg else "")
    elif args.head is None:
        return signatures.DEFAULT_SIGNATURE
    else:
        return args.head + (signatures.JPEG_SUFFIX if args.jpeg else "")


class Answers:
    """The windows' answers of one signature, averaged: probabilities per head (classes named
    as the server's top_k outputs name them) or embeddings."""

    def __init__(self, args):
        self.args = args
        self.windows = 0
        self.totals, self.names, self.k = {}, {}, {}

    def add(self, outputs: dict) -> None:
        self.windows += 1
        if self.args.embedding:
            vector = client.embedding(outputs)[0].astype(np.float64)
            self.totals["embedding"] = self.totals.get("embedding", 0.0) + vector
            return
        if self.args.head is None:
            heads = sorted(
                key[: -len("_probabilities")] for key in outputs if key.endswith("_probabilities")
            )
            prefixes = {head: head + "_" for head in heads}
        else:
            prefixes = {self.args.head: ""}
        for head, prefix in prefixes.items():
            probabilities = np.asarray(outputs[prefix + "probabilities"], np.float64)[0]
            self.totals[head] = self.totals.get(head, 0.0) + probabilities
            names = self.names.setdefault(head, {})
            for entry in client.top_classes(outputs, prefix=prefix):
                names.setdefault(entry["index"], entry["class"])
            self.k[head] = np.asarray(outputs[prefix + "top_k_indices"]).shape[-1]

    def embedding(self) -> list:
        mean = self.totals["embedding"] / self.windows
        return (mean / max(np.linalg.norm(mean), 1e-12)).astype(np.float32).tolist()

    def heads(self) -> dict:
        answers = {}
        for head, total in self.totals.items():
            mean = total / self.windows
            order = np.argsort(-mean, kind="stable")[: min(self.args.top, self.k[head])]
            answers[head] = [
                {
                    "index": int(index),
                    "class": self.names[head].get(int(index), f"class_{index}"),
                    "probability": float(mean[index]),
                }
                for index in order
            ]
        return answers


def send(args, signature: str, frames: np.ndarray) -> dict:
    inputs = client.request_inputs(frames, jpeg=args.jpeg)
    if args.rest:
        return client.rest_predict(
            args.rest, args.model, signature, inputs, args.rest_format, args.timeout
        )
    return client.grpc_predict(args.grpc, args.model, signature, inputs, args.timeout)


def main(argv=None) -> int:
    args = parse_args(argv)
    signature = signature_name(args)
    answers, spans, latency, sent = Answers(args), [], 0.0, 0
    try:
        with VideoStream(args.video, short_side=args.short_side, resume=True) as stream:
            window = args.max_frames / stream.fps
            if not args.no_downscale:
                per_frame = args.max_request_bytes // (3 * args.max_frames)
                stream.max_pixels = max(1, min(args.max_pixels, per_frame))
            for clip in sliding_windows(stream, stream.fps, window, window):
                start = time.perf_counter()
                answers.add(send(args, signature, clip.frames))
                latency += time.perf_counter() - start
                sent += len(clip.frames)
                add_span(spans, round(clip.start, 3), round(clip.end, 3))
                if args.first_clip:
                    break
            damaged = stream.damaged
            duration = stream.duration if args.first_clip else stream.end
            if damaged and not args.first_clip:
                duration = max(duration, damaged[-1][1])
            size = list(stream.frame_size)
            resized = stream.unfitted_size if stream.resized else None
    except VideoDecodeError as error:
        print(json.dumps({"video": args.video, "error": str(error), "code": "decode"}))
        return 1
    except client.ServingError as error:
        print(json.dumps({"video": args.video, "error": error.message, "code": error.code}))
        return 1
    answer = {
        "video": args.video,
        "signature": signature,
        "frames": [sent, *size, 3],
        "windows": answers.windows,
        "duration": round(duration, 3) if duration is not None else None,
        "covered": subtract_spans(spans, damaged),
        "damaged": damaged,
        "latency_ms": round(1000 * latency, 2),
    }
    if args.first_clip:
        answer["first_clip"] = True
    if resized is not None:
        answer["resized"] = {"from": list(resized), "to": size}
    if args.embedding:
        answer["embedding"] = answers.embedding()
    else:
        answer["heads"] = answers.heads()
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
