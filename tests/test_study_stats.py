"""The co-training study's statistics (benchmarks/study_stats.py) on numbers derived by hand.

t quantiles are the printed table values (Student's t, two-sided 95%: 12.706 at 1 degree of
freedom, 4.303 at 2, 2.776 at 4); means, standard deviations and half-widths below were worked
out by hand from the definitions, not with the module under test.
"""

import importlib.util
import pathlib

import pytest

PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "study_stats.py"
spec = importlib.util.spec_from_file_location("study_stats", PATH)
study_stats = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study_stats)


@pytest.mark.parametrize(("dof", "table"), [(1, 12.706), (2, 4.303), (4, 2.776), (30, 2.042)])
def test_t_quantile_matches_the_printed_table(dof, table):
    assert study_stats.t_quantile(0.95, dof) == pytest.approx(table, abs=5e-4)


def test_mean_interval_of_three_seeds():
    # mean 0.72; deviations -0.02, 0.02, 0 -> sd = sqrt(0.0008 / 2) = 0.02;
    # half-width = 4.3027 * 0.02 / sqrt(3) = 0.049683.
    summary = study_stats.mean_interval([0.70, 0.74, 0.72])
    assert summary["mean"] == pytest.approx(0.72)
    assert summary["sd"] == pytest.approx(0.02)
    assert summary["half_width"] == pytest.approx(0.049683, abs=1e-5)
    assert summary["low"] == pytest.approx(0.72 - 0.049683, abs=1e-5)
    assert summary["high"] == pytest.approx(0.72 + 0.049683, abs=1e-5)
    assert study_stats.format_interval(summary) == "72.0 [67.0, 77.0]"


def test_one_seed_has_no_interval():
    summary = study_stats.mean_interval([0.5])
    assert summary["mean"] == 0.5 and summary["low"] is None and summary["half_width"] is None
    assert study_stats.format_interval(summary) == "50.0 (n=1)"
    with pytest.raises(ValueError, match="at least one"):
        study_stats.mean_interval([])


def test_paired_difference_pairs_by_seed():
    # Seed 3 has no partner. Differences 0.10, 0.04, 0.11: mean 0.083333,
    # sd = sqrt((0.016667^2 + 0.043333^2 + 0.026667^2) / 2) = 0.037859,
    # half-width = 4.3027 * 0.037859 / sqrt(3) = 0.094048: the interval [-0.0107, 0.1774]
    # crosses zero although every seed improved.
    cover = {0: 0.80, 1: 0.78, 2: 0.83}
    single = {0: 0.70, 1: 0.74, 2: 0.72, 3: 0.90}
    difference = study_stats.paired_difference(cover, single)
    assert difference["seeds"] == [0, 1, 2]
    assert difference["mean"] == pytest.approx(0.083333, abs=1e-6)
    assert difference["sd"] == pytest.approx(0.037859, abs=1e-6)
    assert difference["half_width"] == pytest.approx(0.094048, abs=1e-5)
    assert difference["excludes_zero"] is False
    clear = study_stats.paired_difference({0: 0.8, 1: 0.81, 2: 0.82}, {0: 0.7, 1: 0.7, 2: 0.7})
    assert clear["excludes_zero"] is True and clear["low"] > 0
    with pytest.raises(ValueError, match="no common seed"):
        study_stats.paired_difference({0: 1.0}, {1: 1.0})


def test_binomial_standard_error_of_a_test_split():
    # sqrt(0.7 * 0.3 / 1000) = 0.014491: a 1000-example split at 70% is within 1.5 points.
    assert study_stats.binomial_standard_error(0.7, 1000) == pytest.approx(0.014491, abs=1e-6)
    with pytest.raises(ValueError):
        study_stats.binomial_standard_error(0.7, 0)


def _report_module():
    import sys

    sys.path.insert(0, str(PATH.parent))
    try:
        import study_report
    finally:
        sys.path.remove(str(PATH.parent))
    return study_report


def test_report_pairs_runs_by_seed_and_writes_every_table(tmp_path):
    """Rows as cotrain.py writes them -> summaries, markdown and a PNG (no training here)."""
    study_report = _report_module()
    rows = []
    for seed, (alone, cover) in enumerate([(0.70, 0.80), (0.74, 0.78), (0.72, 0.83)]):
        common = {"seed": seed, "total_steps": 100, "expected_video_steps": 100.0}
        rows += [
            {**common, "run": "motion", "motion/top1": alone, "motion/num_examples": 1000,
             "motion/top1_shuffled_time": 0.125},
            {**common, "run": "cover_video", "motion/top1": cover, "motion/num_examples": 1000},
            {**common, "run": "transfer_motion_to_motion", "motion/top1": alone},
            {**common, "run": "transfer_cover_video_to_motion", "motion/top1": cover},
        ]  # fmt: skip
    summary = study_report.summarize(rows)
    cover_minus_alone = next(
        d
        for d in summary["differences"]
        if d["treatment"] == "cover_video" and d["head"] == "motion"
    )
    assert cover_minus_alone["mean"] == pytest.approx(0.083333, abs=1e-6)  # as derived above
    assert cover_minus_alone["excludes_zero"] is False
    transfer = next(d for d in summary["differences"] if d["budget"] == "equal fine-tuning steps")
    assert transfer["mean"] == pytest.approx(0.083333, abs=1e-6)
    assert summary["max_standard_error"]["motion"] == pytest.approx(0.014491, abs=1e-6)
    study = {"seeds": [0, 1, 2], "wall_s": 1.0, "cpu_s": 2.0, "runs": rows, "summary": summary}
    text = study_report.markdown(study)
    assert "| motion alone | both | 100 | 100.0 | - | 72.0 [67.0, 77.0] | - |" in text
    assert "| CoVeR - alone | equal video steps | motion | 8.3 [-1.1, 17.7] | no |" in text
    assert "| motion alone, frames shuffled at test | 12.5 [12.5, 12.5] |" in text
    study_report.plot(study, tmp_path / "study.png")
    assert (tmp_path / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
