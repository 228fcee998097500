"""The README's "From your own script" example runs as written (on the prepared synthetic data)."""

import ast
import os
import re
import subprocess
import sys

from tests.training.conftest import REPO


def test_readme_example_trains_and_evaluates(tmp_path, synthetic_data_dir):
    readme = (REPO / "README.md").read_text()
    block = re.search(
        r"<!-- readme-example:start -->\n```python\n(.*?)```\n<!-- readme-example:end -->",
        readme,
        re.S,
    ).group(1)
    # Point the example at this session's prepared data instead of runs/.
    script = block.replace(
        '["model.num_layers=1", "model.hidden_size=32"]',
        f'["model.num_layers=1", "model.hidden_size=32", "data_dir={synthetic_data_dir}"]',
    )
    assert script != block
    (tmp_path / "example.py").write_text(script)
    result = subprocess.run(
        [sys.executable, str(tmp_path / "example.py")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(ast.literal_eval(lines[-2])) == 2  # motion_top1 per epoch
    metrics = ast.literal_eval(lines[-1])
    assert set(metrics) >= {"appearance/top1", "motion/top1", "images/top1"}
    assert metrics["images/num_examples"] == 64
