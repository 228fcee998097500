"""The documentation's runnable blocks that train (README's Keras `fit` example) run as written,
on the prepared synthetic data (tests/test_docs.py runs the others)."""

import ast

import pytest

from tests.test_docs import run_block, runnable_blocks

TRAINING_BLOCKS = runnable_blocks(needs_data=True)


def test_readme_has_the_fit_example():
    assert any(name.startswith("README.md") and ".fit(" in code for name, code in TRAINING_BLOCKS)


@pytest.mark.parametrize("name, code", TRAINING_BLOCKS, ids=[name for name, _ in TRAINING_BLOCKS])
def test_training_block_runs(name, code, tmp_path, synthetic_data_dir):
    result = run_block(code, tmp_path, data_dir=synthetic_data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    if name.startswith("README.md") and ".fit(" in code:  # prints the history, then the metrics
        lines = result.stdout.strip().splitlines()
        assert len(ast.literal_eval(lines[-2])) == 2  # motion_top1 per epoch
        metrics = ast.literal_eval(lines[-1])
        assert set(metrics) >= {"appearance/top1", "motion/top1", "images/top1"}
        assert metrics["images/num_examples"] == 64
