"""Writes docs/performance.md and docs/results.md from the result files in benchmarks/results/.

Every figure on those pages is read from a file there, so a page cannot say what its data does
not; tests/test_report.py checks that the committed pages are what this script writes.

    python benchmarks/report.py           # `make report`: rewrite both pages
    python benchmarks/report.py --check   # exit 1 when a committed page differs from its data

The files, as the benchmarks' `--results-dir` names them (performance_page.py renders the first
four kinds, this module the study):
  <machine>_<date>.jsonl          throughput.py and serving_throughput.py runs (CPU)
  <device>_<date>.jsonl           gpu_throughput.py runs (machine lines with a `device_kind`)
  single_frame[_mixed]_<machine>_<date>.jsonl, input_pipeline_<machine>_<date>.jsonl
  study_<machine>_<date>/study.json   cotrain.py (the embedded co-training study)
A run is a machine line and the lines after it. Per machine kind and benchmark the newest file is
the current one, and each table row comes from the last run in it that measured that row; older
files and runs stay in the data and in git history, not on the pages. A fact a file does not
record (a commit, a peak) is printed as "not recorded".
"""

import argparse
import json
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import performance_page  # noqa: E402
import report_format as fmt  # noqa: E402
import study_report  # noqa: E402

REPO = fmt.REPO
RESULTS = REPO / "benchmarks" / "results"
PAGES = {"performance": REPO / "docs" / "performance.md", "results": REPO / "docs" / "results.md"}
NAME = re.compile(
    r"^(?:(?P<benchmark>single_frame_mixed|single_frame|input_pipeline)_)?"
    r"(?P<machine>[a-z0-9-]+(?:_[a-z0-9]+)?)_(?P<date>\d{4}-\d{2}-\d{2})\.jsonl$"
)


def catalogue(results):
    """{benchmark: {machine: [(date, path)] newest first}} over the result files; other files
    (another tool's, a name without a date) are left out."""
    found = {}
    for path in sorted(results.iterdir()):
        if path.is_dir() and (path / "study.json").exists():
            match = re.match(r"^study_(?P<machine>.+)_(?P<date>\d{4}-\d{2}-\d{2})$", path.name)
            benchmark = "study" if match else None
        else:
            match = NAME.match(path.name)
            benchmark = match and (match["benchmark"] or "cpu")
            if benchmark == "cpu" and any("device_kind" in r for r in fmt.read_lines(path)[:1]):
                benchmark = "gpu"
        if match and benchmark:
            found.setdefault(benchmark, {}).setdefault(match["machine"], []).append(
                (match["date"], path)
            )
    for machines in found.values():
        for files in machines.values():
            files.sort(reverse=True)
    return found


def study_section(machine, files):
    """The newest study of one machine kind: its facts, plot and study_report's tables."""
    date, path = files[0]
    study = json.loads((path / "study.json").read_text())
    study = dict(study, summary=study_report.summarize(study["runs"]))  # from the runs, always
    facts = study.get("machine")
    if facts:
        where = (f"CPU \"{facts.get('cpu_model')}\", {facts.get('cores')} cores; ISA flags: "
                 f"{', '.join(facts.get('isa') or []) or 'not recorded'}; TensorFlow "
                 f"{facts.get('tensorflow', '?')}")  # fmt: skip
    else:
        where = "CPU model, ISA flags and cores not recorded (the directory names the machine kind)"
    out = [
        f"### Machine kind `{machine}`, {study.get('date') or date + ' (directory)'}",
        "",
        f"{where}; commit {fmt.commit(study)}"
        + (f"; `{study['command']}`" if study.get("command") else "")
        + f". {len(study['runs'])} runs: seeds "
        f"{', '.join(map(str, study['seeds']))}, {study['video_steps']} video steps, "
        f"{study['finetune_steps']} fine-tuning steps, {study['jobs']} runs at a time. "
        f"Data: {fmt.link(path / 'study.json')}.",
        "",
    ]
    if study.get("assembled"):
        out += ["Assembled from two sets of runs: study.json's `assembled` names the runs that "
                "were rerun and the set the wall and CPU seconds belong to.", ""]  # fmt: skip
    overrides = ", ".join(f"`{o}`" for o in study.get("overrides") or []) or "none"
    out += [f"Overrides of configs/demo.yaml: {overrides}.", ""]
    if (path / "study.png").exists():
        out += [f"![study: bars with 95% intervals](../{fmt.shown(path / 'study.png')})", ""]
    return out + [study_report.markdown(study).rstrip(), ""]


def results_page(found):
    out = [
        fmt.HEADER,
        "# Results",
        "",
        "## The embedded co-training study",
        "",
        "`make study` (`benchmarks/cotrain.py`): the demo's model and recipe on cover_synthetic, "
        "each setting over seeds; test-split top-1 with 95% t intervals over seeds, paired "
        "differences by seed (`benchmarks/study_report.py`, `benchmarks/study_stats.py`). The "
        "settings, controls and transfers: [benchmarks/README.md](../benchmarks/README.md). One "
        "study per machine kind, the newest first.",
        "",
    ]
    studies = found.get("study", {})
    for machine in fmt.newest_first(studies):
        out += study_section(machine, studies[machine])
    return fmt.page_text(out)


def pages(results=None):
    """{page name: its text} as this script writes them from `results` (benchmarks/results)."""
    found = catalogue(results or RESULTS)
    return {"performance": performance_page.performance_page(found), "results": results_page(found)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    stale = []
    for name, text in pages().items():
        path = PAGES[name]
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(fmt.shown(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {fmt.shown(path)}")
    if stale:
        print(f"report.py: error: {', '.join(stale)} differ from what `make report` writes from "
              "benchmarks/results; run it", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
