"""The documentation stays true: its runnable examples run, the commands it names exist, its links
resolve, and the config reference lists every key with the default the code has.

- A Python block preceded by `<!-- runnable -->` in README.md or docs/*.md runs as written, in a
  fresh process whose working directory holds `configs/` (a link to the repository's). Blocks
  that train on the synthetic datasets (they call `load_config`) run in
  tests/training/test_readme_example.py, which has the prepared data.
- Every `python -m cover_tf.X` and `python export/X.py` the docs name answers `--help` (exit 0).
- Relative links between README.md, docs/, export/README.md and the files they name resolve,
  `#anchors` included (GitHub's heading slugs).
"""

import dataclasses
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", REPO / "export" / "README.md", *(REPO / "docs").glob("*.md")])
RUNNABLE = re.compile(r"<!-- runnable -->\n```python\n(.*?)```", re.S)
MODULE_COMMAND = re.compile(r"python -m (cover_tf(?:\.\w+)+)")
SCRIPT_COMMAND = re.compile(r"python (export/\w+\.py)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
MAX_README_LINES = 250


def runnable_blocks(needs_data=None):
    """[(id, code)] of the runnable Python blocks of README.md and docs/*.md; `needs_data`
    True / False keeps only the blocks that do / do not train on prepared datasets."""
    blocks = []
    for path in DOCS:
        for index, match in enumerate(RUNNABLE.finditer(path.read_text())):
            code = match.group(1)
            uses_data = "load_config(" in code
            if needs_data is None or needs_data == uses_data:
                blocks.append((f"{path.relative_to(REPO)}#{index}", code))
    return blocks


def run_block(code, workdir, data_dir=None, timeout=600):
    """Runs a documentation block in a fresh process in `workdir`; `data_dir` points every
    `load_config(...)` of the block at prepared datasets. Returns the CompletedProcess."""
    workdir = pathlib.Path(workdir)
    if not (workdir / "configs").exists():
        (workdir / "configs").symlink_to(REPO / "configs")
    if data_dir is not None:
        patched = re.sub(
            r"load_config\((\"[^\"]+\"), \[", rf'load_config(\1, ["data_dir={data_dir}", ', code
        )
        assert patched != code, "the block has no load_config(PATH, [...]) to point at the data"
        code = patched
    (workdir / "block.py").write_text(code)
    return subprocess.run(
        [sys.executable, "block.py"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=workdir,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)},
    )


@pytest.mark.parametrize(
    "code", [code for _, code in runnable_blocks(False)], ids=[i for i, _ in runnable_blocks(False)]
)
def test_runnable_block_runs(code, tmp_path):
    result = run_block(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def test_docs_have_runnable_blocks():
    assert runnable_blocks(False), "no runnable block without data"
    assert runnable_blocks(True), "no runnable block that trains (tests/training runs those)"


def named_commands():
    modules, scripts = set(), set()
    for path in DOCS + sorted((REPO / "configs").glob("*.yaml")):
        text = path.read_text()
        modules.update(MODULE_COMMAND.findall(text))
        scripts.update(SCRIPT_COMMAND.findall(text))
    return sorted(modules), sorted(scripts)


def test_docs_name_the_commands():
    modules, scripts = named_commands()
    for expected in ("cover_tf.train", "cover_tf.export", "cover_tf.predict", "cover_tf.convert"):
        assert expected in modules
    assert "export/serving_client.py" in scripts


@pytest.mark.parametrize(
    "command",
    [["-m", module] for module in named_commands()[0]]
    + [[script] for script in named_commands()[1]],
    ids=lambda command: command[-1],
)
def test_named_command_answers_help(command):
    result = subprocess.run(
        [sys.executable, *command, "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage:" in result.stdout


def slug(heading):
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip())
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_relative_links_resolve():
    broken = []
    for path in DOCS:
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # https://, mailto:
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(REPO)} -> {target}"
            if not resolved.exists():
                broken.append(f"{where}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{where}: no heading with that anchor")
    assert not broken, "\n".join(broken)


def test_readme_is_short():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def reference_rows():
    """{key: default text} of the config reference table in docs/training.md."""
    text = (REPO / "docs" / "training.md").read_text()
    return dict(re.findall(r"^\| `([\w.\[\]]+)` \| `([^`]*)` \|", text, re.M))


def code_defaults():
    from cover_tf.config import EvalConfig, ModelConfig, OptimizerConfig, TrainConfig
    from cover_tf.data.dataset_config import DatasetConfig, MixingConfig, RandAugmentConfig

    sections = [
        (ModelConfig, "model."),
        (DatasetConfig, "datasets[]."),
        (RandAugmentConfig, "datasets[].randaugment."),
        (MixingConfig, "mixing."),
        (OptimizerConfig, "optimizer."),
        (TrainConfig, "train."),
        (EvalConfig, "eval."),
    ]
    defaults = {"name": "'experiment'", "data_dir": "None"}
    for cls, prefix in sections:
        for field in dataclasses.fields(cls):
            defaults[prefix + field.name] = repr(field.default)
    return defaults


def test_config_reference_lists_every_key_with_its_default():
    documented, expected = reference_rows(), code_defaults()
    assert sorted(set(expected) - set(documented)) == [], "keys missing from docs/training.md"
    assert sorted(set(documented) - set(expected)) == [], "docs/training.md lists unknown keys"
    wrong = {
        key: (documented[key], expected[key])
        for key in expected
        if documented[key] != expected[key]
    }
    assert not wrong, f"documented default != code default: {wrong}"
