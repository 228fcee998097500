"""`make report` (benchmarks/report.py) writes docs/performance.md and docs/results.md from the files
in benchmarks/results/: the committed pages are what it writes, each machine kind's table comes
from its newest file and each row from the last run that measured it, and what a file does not
record is said, not guessed. No TensorFlow: the report only reads JSON."""

import json
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import report  # noqa: E402


def test_committed_pages_are_what_make_report_writes():
    for name, text in report.pages().items():
        page = report.PAGES[name]
        assert page.exists(), f"{page} is missing: run `make report`"
        assert page.read_text() == text, f"{page} differs from its data: run `make report`"


def machine(date=None, commit=None, **fields):
    """A throughput.py machine line of the test CPU (an early one without date and commit)."""
    line = {"kind": "machine", "impl": "cover_tf", "machine": "test-cpu_avx2", "cpu_model": "Test CPU",
            "cores": 4, "isa": ["avx2", "fma"], "tensorflow": "2.20.0", "keras": "3.15.1",
            "threads": {"intra_op": 4, "inter_op": 1}, "onednn": True,
            "peak_fp32_gflops": 100.0, "peak_bf16_gflops": 50.0}  # fmt: skip
    if date:
        line.update(date=date, commit=commit, commit_dirty=False, onednn_version="3.7.3",
                    command="python benchmarks/throughput.py --configs tiny")  # fmt: skip
    return {**line, **fields}


def measurement(config, mode, clips, round=None, xla="off"):
    line = {"kind": "measurement", "impl": "cover_tf", "config": config, "mode": mode,
            "precision": "fp32", "xla": xla, "batch": 8, "gflop_per_clip": 0.7,
            "clips_per_s": clips, "mfu": 0.5, "peak_rss_mb": 1000.0, "foreign_cpu_frac": 0.0}  # fmt: skip
    return line if round is None else {**line, "round": round}


def peer(config, mode, eager, compiled, round=None):
    line = {"kind": "peer", "config": config, "precision": "fp32", "torch": "2.13.0",
            "transformers": "5.23.0", f"{mode}_clips_per_s_runs": [eager],
            f"{mode}_compile_clips_per_s_runs": [compiled]}  # fmt: skip
    return line if round is None else {**line, "round": round}


def write(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def rows(page, prefix):
    """The cells of the table rows of `page` that start with `prefix` cells."""
    start = "| " + " | ".join(prefix) + " |"
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in page.splitlines() if ln.startswith(start)]  # fmt: skip


@pytest.fixture
def results(tmp_path):
    directory = tmp_path / "results"
    directory.mkdir()
    write(directory / "test-cpu_avx2_2030-01-01.jsonl",  # superseded by the newer file
          [machine(), measurement("tiny", "infer", 999.0), peer("tiny", "infer", 1.0, 1.0)])  # fmt: skip
    write(directory / "test-cpu_avx2_2030-01-02.jsonl", [
        machine("2030-01-02", "abc123def456"), measurement("tiny", "infer", 50.0),
        peer("tiny", "infer", 90.0, 100.0),
        machine(peak_fp32_gflops=80.0), measurement("base", "train", 0.2),
        machine("2030-01-02", "fedcba654321"), measurement("tiny", "infer", 120.0),
        peer("tiny", "infer", 90.0, 100.0),
    ])  # fmt: skip
    (directory / "kernels_test-cpu_avx2_2030-01-02.jsonl").write_text('{"another": "tool"}\n')
    return directory


def test_newest_file_and_last_run_per_row_are_current(results):
    page = report.pages(results)["performance"]
    assert "999" not in page  # the older file's figures are left to the data
    (tiny,) = rows(page, ["tiny", "infer", "fp32", "off"])
    assert tiny[6] == "120" and tiny[9:] == [
        "90.0",
        "100",
        "1.20",
        "B",
    ]  # the last run measuring it
    (base,) = rows(page, ["base", "train", "fp32", "off"])
    assert base[6] == "0.2" and base[9:] == ["-", "-", "-", "A"]  # no peer in its run: no ratio
    assert "test-cpu_avx2_2030-01-02.jsonl" in page and "2030-01-01.jsonl" not in page


def test_runs_table_names_date_commit_onednn_and_peaks_or_says_not_recorded(results):
    page = report.pages(results)["performance"]
    (early,) = rows(page, ["A"])  # the run without date, commit and oneDNN version
    assert early[1:5] == ["2030-01-02 (file)", "not recorded", "4 (inter-op 1)", "on, version not recorded"]  # fmt: skip
    assert early[6] == "80.0 / 50.0"
    (recorded,) = rows(page, ["B"])
    assert recorded[1:5] == ["2030-01-02", "fedcba654321", "4 (inter-op 1)", "on, v3.7.3"]
    assert recorded[6:] == ["100 / 50.0", "not recorded", "transformers 5.23.0, torch 2.13.0"]
    assert 'CPU "Test CPU", 4 cores; ISA flags: avx2, fma.' in page
    assert "Command: B: `python benchmarks/throughput.py --configs tiny`." in page


def test_paired_rounds_give_the_ratio_an_interval(tmp_path):
    # the machine halves both speeds in round 1: each round's paired ratio stays 1.2
    lines = [machine("2030-01-03", "abc")]
    for index, (ours, theirs) in enumerate([(12.0, 10.0), (6.0, 5.0), (13.2, 11.0)]):
        lines += [measurement("small", "train", ours, index), peer("small", "train", theirs, 1.0, index)]  # fmt: skip
    write(tmp_path / "test-cpu_avx2_2030-01-03.jsonl", lines)
    page = report.pages(tmp_path)["performance"]
    (small,) = rows(page, ["small", "train", "fp32", "off"])
    assert small[6] == "12.0" and small[11] == "1.20 [1.20, 1.20]"  # medians, geometric mean
    assert "geometric mean of the run's paired rounds" in page


def test_check_fails_on_a_stale_page_and_passes_once_written(
    results, tmp_path, monkeypatch, capsys
):
    pages = {name: tmp_path / "docs" / f"{name}.md" for name in report.PAGES}
    monkeypatch.setattr(report, "PAGES", pages)
    monkeypatch.setattr(report, "RESULTS", results)
    assert report.main(["--check"]) == 1
    assert "differ from what `make report` writes" in capsys.readouterr().err
    assert report.main([]) == 0 and report.main(["--check"]) == 0
    pages["performance"].write_text(pages["performance"].read_text().replace("120", "121"))
    assert report.main(["--check"]) == 1
