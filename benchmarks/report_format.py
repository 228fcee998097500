"""Reading result files and writing their markdown: what both report pages share (report.py)."""

import json
import pathlib
import re
import statistics

REPO = pathlib.Path(__file__).resolve().parents[1]
ISA_NAMES = {"amx": "AMX-BF16", "avx512bf16": "AVX512-BF16", "avx512": "AVX-512", "avx2": "AVX2"}
HEADER = (
    "<!-- Written by `make report` (benchmarks/report.py) from benchmarks/results/: "
    "do not edit; add a result file and rerun it. -->\n"
)


# ----------------------------------------------------------------------------- reading
def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def split_runs(lines):
    """[(machine line, [the lines after it])]: one entry per run."""
    runs = []
    for line in lines:
        if line.get("kind") == "machine":
            runs.append((line, []))
        elif runs:
            runs[-1][1].append(line)
    return runs


def newest_first(machines):
    """Machine kinds, the one with the newest file first (then by name)."""
    return sorted(machines, key=lambda m: (-int(machines[m][0][0].replace("-", "")), m))


# ----------------------------------------------------------------------------- formatting
def figure(value):
    """Three significant digits, no exponent; "-" for None."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def number(value, fmt):
    return "-" if value is None else format(value, fmt)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def shown(path):
    """`path` as the pages name it: from the repository root (outside it, as given)."""
    path = pathlib.Path(path)
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.as_posix()


def link(path):
    """A link from a page in docs/ to `path`."""
    target = shown(path)
    return f"[{target}]({target if target.startswith('/') else '../' + target})"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def machine_title(machine, line):
    kind = machine.rsplit("_", 1)[-1]
    model = line.get("cpu_model") or line.get("device_kind") or machine
    return f"{model}, {ISA_NAMES.get(kind, kind)} (`{machine}`)"


def onednn(line):
    state = line.get("onednn")
    state = {True: "on", False: "off", None: "not recorded"}.get(state, str(state))
    version = line.get("onednn_version")
    return f"{state}, v{version}" if version else f"{state}, version not recorded"


def commit(line):
    if not line.get("commit"):
        return "not recorded"
    return line["commit"] + (" + uncommitted changes" if line.get("commit_dirty") else "")


def threads(line):
    value = line.get("threads")
    if isinstance(value, dict):
        return f"{value.get('intra_op')} (inter-op {value.get('inter_op')})"
    return "not recorded" if value is None else str(value)


def peaks(line, library):
    keys = [f"{'' if library == 'tf' else 'torch_'}peak_{p}_gflops" for p in ("fp32", "bf16")]
    if not any(key in line for key in keys):
        return "not recorded"
    fp32, bf16 = (line.get(key) for key in keys)
    if fp32 is None and bf16 is None:
        return "not measured"
    return f"{figure(fp32)} / {figure(bf16)}"


def machine_facts(line, path):
    """The sentence under a machine's heading: CPU, cores, ISA flags, the data file."""
    isa = line.get("isa") or line.get("flags")
    return (
        f'CPU "{line.get("cpu_model") or line.get("machine")}", {line.get("cores", "?")} cores; '
        f"ISA flags: {', '.join(isa) if isa else 'not recorded'}. Data: {link(path)}."
    )


def runs_table(used, date):
    """One row per run a table drew on (date, commit, threads, oneDNN, versions, peaks), then
    the command of each run that recorded it."""
    rows = []
    for label, (line, extra) in used.items():
        versions = " / ".join(line.get(p, "not recorded") for p in ("tensorflow", "keras"))
        rows.append([
            label, line.get("date") or f"{date} (file)", commit(line), threads(line),
            onednn(line), versions, peaks(line, "tf"), peaks(line, "torch"),
            extra.get("peer_versions") or "-",
        ])  # fmt: skip
    header = ["run", "date", "commit", "threads", "TF oneDNN", "TF / Keras",
              "TF matmul peak fp32 / bf16 GFLOP/s", "torch peak fp32 / bf16", "peer"]  # fmt: skip
    commands = [f"{label}: `{line['command']}`" for label, (line, _) in used.items() if line.get("command")]  # fmt: skip
    said = ["", "Command: " + "; ".join(commands) + "."] if commands else []
    return table(header, rows) + said


def page_text(lines):
    """The page: lines joined, runs of blank lines collapsed to one."""
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"
