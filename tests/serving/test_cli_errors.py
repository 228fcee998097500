"""predict and export on real broken inputs, as a user runs them: `<command>: error: <one
sentence>`, exit 2, no traceback (--verbose: the traceback too)."""

import os
import subprocess
import sys
import types

import pytest

from cover_tf import export
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
        prefix = f"{module.split('.')[-1]}: error: "
        assert len(lines) == 1 and lines[0].startswith(prefix), (case, result.stderr[-2000:])
        assert message in lines[0], (case, lines[0])
        assert "Traceback" not in result.stderr and not result.stdout, case
    assert not (broken / "out").exists()  # nothing written for a refused export


def test_export_to_a_file_is_one_sentence_before_the_model_loads(workdir, tmp_path):
    (tmp_path / "exports").write_text("a file where the export base should be\n")
    result = run_cli(
        "cover_tf.export", "--workdir", str(workdir), "--out", str(tmp_path / "exports")
    )
    assert result.returncode == 2 and not result.stdout
    assert (
        result.stderr == f"export: error: --out '{tmp_path / 'exports'}' is a file, not a folder\n"
    )
    # A folder under that file cannot be made either.
    result = run_cli(
        "cover_tf.export", "--workdir", str(workdir), "--out", str(tmp_path / "exports" / "cover")
    )
    assert result.returncode == 2
    assert result.stderr.startswith("export: error: --out ") and "is a file" in result.stderr
    # --verbose: the traceback, then the same sentence.
    result = run_cli(
        "cover_tf.export",
        "--workdir",
        str(workdir),
        "--out",
        str(tmp_path / "exports"),
        "--verbose",
    )
    assert result.returncode == 2 and "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("export: error: --out ")


def test_export_to_a_read_only_filesystem_is_one_sentence(tmp_path, monkeypatch, capsys):
    """The check reads the filesystem's read-only flag (statvfs), which root's writes obey too;
    here the flag is raised on one folder of the test's temporary disk."""
    read_only = tmp_path / "mnt"
    read_only.mkdir()
    statvfs = os.statvfs

    def read_only_statvfs(path):
        result = statvfs(path)
        if os.path.abspath(path) == str(read_only):
            return types.SimpleNamespace(f_flag=result.f_flag | os.ST_RDONLY)
        return result

    monkeypatch.setattr(os, "statvfs", read_only_statvfs)
    out = read_only / "exports" / "cover"
    # The workdir need not exist: --out is checked before anything is read.
    assert export.main(["--workdir", str(tmp_path / "absent"), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"export: error: --out '{out}' is on a read-only filesystem ('{read_only}')\n"
    )
    assert not (read_only / "exports").exists()


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
