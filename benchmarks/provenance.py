"""What every benchmark result records about where it was measured: the date, the commit, the
command, the machine's file-name slug. Standard library only, so that the report (`report.py`)
and the GPU benchmark, which import no TensorFlow, can use it too."""

import datetime
import os
import subprocess

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def today() -> str:
    """The UTC date, `YYYY-MM-DD`: the date in result file names and machine lines."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


def git_commit(repo=REPO_ROOT) -> dict:
    """{"commit": short hash of HEAD, "commit_dirty": tracked files changed since it}, or
    {"commit": None, "commit_dirty": None} outside a git checkout (or without git)."""

    def git(*args):
        done = subprocess.run(
            ["git", "-C", repo, *args], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "commit_dirty": None}
    return {"commit": commit, "commit_dirty": dirty}


def command(argv=None) -> str:
    """The command line this process runs, its script named from the repository root."""
    import shlex
    import sys

    argv = list(sys.argv if argv is None else argv)
    script = os.path.abspath(argv[0]) if argv else ""
    if script.startswith(REPO_ROOT + os.sep):
        argv[0] = os.path.relpath(script, REPO_ROOT)
    return "python " + shlex.join(argv)


def machine_name(cpu_model, flags) -> str:
    """A file-name slug for the machine: CPU model and its widest vector/matrix ISA."""
    if "amx_bf16" in flags:
        isa = "amx"
    elif "avx512_bf16" in flags:
        isa = "avx512bf16"
    elif "avx512f" in flags:
        isa = "avx512"
    elif "avx2" in flags:
        isa = "avx2"
    else:
        isa = "other"
    model = "".join(c if c.isalnum() else "-" for c in (cpu_model or "cpu").lower())
    return "-".join(part for part in model.split("-") if part) + f"_{isa}"


def isa_flags(flags) -> list:
    """The ISA flags that decide the kernels (FMA, AVX2, AVX-512, AMX), sorted."""
    return sorted(f for f in flags if f.startswith(("avx2", "fma", "avx512", "amx")))


def save_lines(records, results_dir, prefix=""):
    """Appends `records` (dicts) to `<results_dir>/<prefix><machine>_<date>.jsonl`, the machine
    and date read from the first record with `"kind": "machine"`; returns the path."""
    import json

    machine = next(r for r in records if r.get("kind") == "machine")
    date = machine.get("date") or today()
    path = os.path.join(results_dir, f"{prefix}{machine['machine']}_{date}.jsonl")
    os.makedirs(results_dir, exist_ok=True)
    with open(path, "a") as f:
        f.writelines(json.dumps(record) + "\n" for record in records)
    return path
