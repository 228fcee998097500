"""The mixed pipeline under MirroredStrategy over 2 logical CPUs, consumed by Keras fit."""

import os
import subprocess
import sys


def test_mixed_pipeline_distributes_and_fits(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "distributed_fit_script.py")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "OK 1" in result.stdout, result.stdout[-2000:]
