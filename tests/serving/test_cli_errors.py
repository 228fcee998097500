"""predict and export on real broken inputs, as a user runs them: one line, exit 2, no traceback."""

import os
import subprocess
import sys

import pytest

from tests.serving.conftest import REPO

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO,
        timeout=300,
    )


@pytest.fixture(scope="module")
def broken(tmp_path_factory, workdir):
    """Real broken files: a truncated and a non-zip .keras, a workdir without datasets.json."""
    folder = tmp_path_factory.mktemp("broken")
    data = (workdir / "model.keras").read_bytes()
    (folder / "truncated.keras").write_bytes(data[: len(data) // 2])
    (folder / "text.keras").write_text("not a model\n")
    (folder / "no_datasets").mkdir()
    (folder / "no_datasets" / "model.keras").write_bytes(data)
    (folder / "not_an_export").mkdir()
    (folder / "not_an_export" / "notes.txt").write_text("hello\n")
    return folder


@pytest.mark.slow  # one TF process per case (~10 s each on a quiet machine)
def test_predict_and_export_errors_are_one_line_exit_2(broken, real_clip):
    video = str(real_clip[0])
    cases = {
        "missing model": (
            "cover_tf.predict",
            [video, "--model", str(broken / "absent.keras")],
            "does not exist",
        ),
        "truncated keras": (
            "cover_tf.predict",
            [video, "--model", str(broken / "truncated.keras")],
            "truncated",
        ),
        "not an export": (
            "cover_tf.predict",
            [video, "--model", str(broken / "not_an_export")],
            "neither a SavedModel nor an export base",
        ),
        "non-zip keras": (
            "cover_tf.export",
            ["--checkpoint", str(broken / "text.keras"), "--out", str(broken / "out")],
            "not a .keras archive",
        ),
        "missing datasets.json": (
            "cover_tf.export",
            ["--workdir", str(broken / "no_datasets"), "--out", str(broken / "out")],
            "has no datasets.json",
        ),
    }
    for case, (module, args, message) in cases.items():
        result = run_cli(module, *args)
        assert result.returncode == 2, (case, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (case, result.stderr[-2000:])
        assert message in lines[0], (case, lines[0])
        assert "Traceback" not in result.stderr and not result.stdout, case
    assert not (broken / "out").exists()  # nothing written for a refused export


def test_verbose_shows_the_traceback(broken, real_clip):
    result = run_cli(
        "cover_tf.predict",
        str(real_clip[0]),
        "--model",
        str(broken / "truncated.keras"),
        "--verbose",
    )
    assert result.returncode != 0 and "Traceback" in result.stderr
    assert "SourceError" in result.stderr and "truncated" in result.stderr
