"""TFDS's own CLI, `tfds build datasets/<name>`, on a real-format Kinetics folder with bad files.

Runs the real `tfds` console script as a user would (a subprocess; PYTHONPATH is inherited, so it
imports this tree), without Beam and (slow) with the DirectRunner on 2 worker processes.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from tests.builders.conftest import KINETICS_GOOD, check_kinetics_report
from tests.builders.test_beam_build import prepare, reports, stored_examples

REPO = pathlib.Path(__file__).resolve().parents[2]
BEAM_OPTIONS = "runner=DirectRunner,direct_num_workers=2,direct_running_mode=multi_processing"


def tfds_build(*args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec("mlcroissant") is None:
        pytest.fail("tfds's CLI imports mlcroissant at start-up: pin mlcroissant==1.1.1")
    command = [str(pathlib.Path(sys.executable).parent / "tfds"), "build", *args]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def cli_build(kinetics_root, data_dir, *extra) -> tfds.core.DatasetBuilder:
    result = tfds_build(
        "datasets/kinetics",
        "--config=400",
        f"--manual_dir={kinetics_root}",
        f"--data_dir={data_dir}",
        *extra,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return tfds.builder_from_directory(str(data_dir / "kinetics" / "400" / "1.0.0"))


def test_tfds_build_keeps_every_good_clip_and_lists_every_bad_one(kinetics_root, tmp_path):
    builder = cli_build(kinetics_root, tmp_path / "tfds")
    for split, keys in KINETICS_GOOD.items():
        assert sorted(stored_examples(builder, split)) == [f"{k}_000010_000020" for k in keys]
    check_kinetics_report(reports(builder))
    assert builder.info.features["label"].names == ["abseiling", "bowling"]


def test_tfds_build_wrong_manual_dir_names_it(tmp_path):
    result = tfds_build(
        "datasets/video_folder", f"--manual_dir={tmp_path}/nowhere", f"--data_dir={tmp_path}"
    )
    assert result.returncode != 0
    assert f"{tmp_path}/nowhere does not exist" in result.stderr


@pytest.mark.slow
def test_tfds_build_on_beam_workers_equals_the_local_build(kinetics_root, tmp_path):
    beamed = cli_build(kinetics_root, tmp_path / "beam", f"--beam_pipeline_options={BEAM_OPTIONS}")
    local = prepare("kinetics/400", kinetics_root, tmp_path / "local")
    for split in KINETICS_GOOD:
        assert stored_examples(beamed, split) == stored_examples(local, split)
    assert reports(beamed) == reports(local)
    check_kinetics_report(reports(beamed))
