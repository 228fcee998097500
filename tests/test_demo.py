"""`python -m cover_tf.demo` (a first look after install) on a real clip and a real photo."""

import json
import os
import subprocess
import sys


def test_demo_runs_one_model_on_a_clip_and_an_image():
    result = subprocess.run(
        [sys.executable, "-m", "cover_tf.demo", "--variant", "Ti/16", "--image-size", "32"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    header, clip, image = lines
    assert header["heads"] == {"imagenet": 1000, "kinetics400": 400, "ssv2": 174}
    assert clip["shape"] == [1, 8, 32, 32, 3] and image["shape"] == [1, 1, 32, 32, 3]
    assert clip["source"].endswith("bikes.mp4")
    for line in (clip, image):
        assert line["outputs"] == {"imagenet": [1, 1000], "kinetics400": [1, 400], "ssv2": [1, 174]}
