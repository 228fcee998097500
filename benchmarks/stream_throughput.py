"""Long-video timeline: peak memory and speed of `python -m cover_tf.predict --timeline`.

    python benchmarks/stream_throughput.py --model EXPORT [--seconds 30 600] [--size 640x360]
        [--fps 30] [--out /tmp/stream_bench] [--profile]

Generates H.264 test-pattern videos of the given lengths (streamed to the encoder, never held in
memory), runs predict's timeline on each in a fresh process and prints one JSON line per video:
peak RSS (MiB), wall seconds, seconds of video per second. `--profile` adds where the time goes
for the first length: decoding (PyAV, to RGB at the eval short side), the model call per window,
and the rest (window assembly, JSON).
"""

import argparse
import fractions
import json
import pathlib
import resource
import subprocess
import sys
import time

import av
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]


def write_long_video(path, seconds: float, width=640, height=360, fps=30, scene_seconds=20.0):
    """Encodes an H.264 mp4 of `seconds`: a moving square on a gradient, a new scene (colours,
    direction) every `scene_seconds`; frames are made one at a time (memory: one frame)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(0)
    scenes = {}
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(
            "libx264", rate=fractions.Fraction(fps).limit_denominator(1001)
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        side = height // 3
        for index in range(int(round(seconds * fps))):
            scene = int(index / fps // scene_seconds)
            if scene not in scenes:
                low, high = rng.integers(0, 256, (2, 3))
                weight = (x / max(width - 1, 1))[..., None]
                scenes.clear()
                scenes[scene] = (
                    (low * (1 - weight) + high * weight).astype(np.uint8),
                    rng.integers(0, 256, 3, dtype=np.uint8),
                    int(rng.integers(2, 9)) * (1 if rng.random() < 0.5 else -1),
                )
            background, colour, speed = scenes[scene]
            frame = background.copy()
            left = (index * speed) % (width - side)
            top = (height - side) // 2
            frame[top : top + side, left : left + side] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def run_predict(video, model, extra=()) -> dict:
    """predict --timeline in a fresh process: {"peak_rss_mib", "wall_s", "summary"}."""
    code = (
        "import json, resource, sys\n"
        "from cover_tf import predict\n"
        "status = predict.main(sys.argv[1:])\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print('PEAK_RSS_KIB', peak, file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    argv = [str(video), "--model", str(model), "--timeline", "--json", *extra]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"predict failed ({done.returncode}): {done.stderr[-2000:]}")
    peak = next(
        int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS")
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return {"peak_rss_mib": peak / 1024, "wall_s": wall, "lines": lines}


def profile(video, model, seconds_limit=60.0) -> dict:
    """Seconds spent decoding vs in the model for the first `seconds_limit` s of a video."""
    from cover_tf.serving.predictors import make_predictor
    from cover_tf.serving.timeline import clip_geometry
    from cover_tf.serving.video_stream import VideoStream, default_window, sliding_windows

    predictor = make_predictor(model)
    span, short_side = clip_geometry(predictor, predictor.head_names)
    timings = {"decode_s": 0.0, "model_s": 0.0, "windows": 0}
    start = time.perf_counter()
    with VideoStream(video, short_side=short_side) as stream:
        window = default_window(span, 1, stream.fps)
        frames = iter(stream)

        def timed_frames():
            while True:
                tick = time.perf_counter()
                item = next(frames, None)
                timings["decode_s"] += time.perf_counter() - tick
                if item is None or item[0] > seconds_limit:
                    return
                yield item

        for clip in sliding_windows(timed_frames(), stream.fps, window, window):
            tick = time.perf_counter()
            predictor.predict(clip.frames)
            timings["model_s"] += time.perf_counter() - tick
            timings["windows"] += 1
    timings["total_s"] = time.perf_counter() - start
    timings["other_s"] = timings["total_s"] - timings["decode_s"] - timings["model_s"]
    timings["video_s"] = seconds_limit
    timings["window_s"] = window
    return {key: round(value, 3) for key, value in timings.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="export folder")
    parser.add_argument("--seconds", type=float, nargs="+", default=[30.0, 600.0])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--out", default="/tmp/stream_bench")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--label", default="", help="a name for the model in the output")
    args = parser.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    for seconds in args.seconds:
        video = pathlib.Path(args.out) / f"pattern_{int(seconds)}s_{width}x{height}.mp4"
        if not video.exists():
            tick = time.perf_counter()
            write_long_video(video, seconds, width, height, args.fps)
            print(f"wrote {video} in {time.perf_counter() - tick:.1f} s", file=sys.stderr)
        result = run_predict(video, args.model)
        summary = result["lines"][-1]
        record = {
            "model": args.label or str(args.model),
            "video_seconds": seconds,
            "size": args.size,
            "windows": summary["windows"],
            "window_s": round(summary["window"], 3),
            "covered_s": summary["duration"],
            "peak_rss_mib": round(result["peak_rss_mib"], 1),
            "process_wall_s": round(result["wall_s"], 1),
            "timeline_wall_s": summary["seconds"],
            "video_seconds_per_second": summary["video_seconds_per_second"],
        }
        print(json.dumps(record), flush=True)
        if args.profile and seconds == args.seconds[0]:
            print(json.dumps({"profile": profile(video, args.model, min(seconds, 60.0))}))
    print(
        json.dumps(
            {"parent_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
