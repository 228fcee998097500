"""The experiment config: YAML onto typed dataclasses, overrides, errors that name the key."""

import os
import pathlib
import subprocess
import sys

import pytest

from cover_tf.config import ConfigError, ExperimentConfig, dump_config, load_config

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def test_demo_config_loads_with_typed_values():
    config = load_config(CONFIGS / "demo.yaml")
    assert isinstance(config, ExperimentConfig)
    assert [d.name for d in config.datasets] == ["appearance", "motion", "images"]
    motion = config.datasets[1]
    # motion trains on whole frames (as it is tested), no scale-jittered crop: configs/demo.yaml
    assert motion.flip is False and motion.train_short_side_range == (32, 32)
    assert config.optimizer.learning_rate == 0.001 and isinstance(
        config.optimizer.learning_rate, float
    )
    # data_dir of the experiment reaches every dataset block that does not set its own
    assert all(d.data_dir == "runs/tensorflow_datasets" for d in config.datasets)


def test_study_recipe_restores_the_recipe_the_study_table_was_measured_with():
    """benchmarks/cotrain.py trains the demo recipe with `STUDY_RECIPE` on top: where the demo
    moved since the study's table was measured, the study must not (or its rerun would differ)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "cotrain", CONFIGS.parent / "benchmarks" / "cotrain.py"
    )
    cotrain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cotrain)
    study = load_config(CONFIGS / "demo.yaml", list(cotrain.STUDY_RECIPE))
    demo = load_config(CONFIGS / "demo.yaml")
    motion = {d.name: d for d in study.datasets}["motion"]
    assert motion.train_short_side_range == (32, 40)
    assert all(d.cache == "none" for d in study.datasets)
    assert study.train.steps_per_epoch == 250
    assert demo.train.xla_one_frame and not study.train.xla_one_frame
    assert {d.builder for d in study.datasets} == {
        f"cover_synthetic/{name}_2_2" for name in ("appearance", "motion", "images")
    }
    # everything else is the demo's
    assert (study.model, study.optimizer, study.mixing) == (demo.model, demo.optimizer, demo.mixing)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid_and_documented(path):
    assert path.read_text().startswith("#"), "each experiment file opens with a comment"
    load_config(path)


def test_overrides_reach_nested_fields_and_datasets_by_name_or_index():
    config = load_config(
        CONFIGS / "demo.yaml",
        [
            "train.steps=20",
            "model.num_layers=2",
            "datasets.motion.weight=2.5",
            "datasets.0.flip=false",
            "mixing.alpha=0.5",
        ],
    )
    assert config.train.steps == 20 and config.model.num_layers == 2
    assert config.datasets[1].weight == 2.5 and config.datasets[0].flip is False
    assert config.mixing.alpha == 0.5


def test_a_dataset_is_dropped_by_name_or_index_without_copying_the_yaml():
    """`--set datasets.<name>=null` trains a paper config on fewer datasets: the rest validates
    as it was."""
    full = load_config(CONFIGS / "cover_b16.yaml")
    config = load_config(CONFIGS / "cover_b16.yaml", ["datasets.ssv2=null"])
    assert [d.name for d in config.datasets] == ["kinetics400", "mit", "imagenet"]
    assert config.datasets == [d for d in full.datasets if d.name != "ssv2"]
    assert (config.model, config.mixing, config.optimizer) == (
        full.model,
        full.mixing,
        full.optimizer,
    )
    # By index; the later overrides see the list without it.
    config = load_config(
        CONFIGS / "cover_b16.yaml",
        ["datasets.0=null", "datasets.0.weight=2", "datasets.imagenet=null"],
    )
    assert [(d.name, d.weight) for d in config.datasets] == [("ssv2", 2.0), ("mit", None)]
    # The own-videos recipe without photos.
    config = load_config(CONFIGS / "own_videos.yaml", ["datasets.images=null"])
    assert [d.builder for d in config.datasets] == ["video_folder"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["datasets.ssv3=null"], r"--set datasets\.ssv3: no dataset named 'ssv3'; datasets are"),
        (["datasets.ssv2=2"], r"name a field of the dataset .* or drop the dataset with"),
        (
            [f"datasets.{name}=null" for name in ("kinetics400", "ssv2", "mit", "imagenet")],
            r"datasets: give at least one dataset block",
        ),
    ],
)
def test_dropping_names_a_missing_dataset_and_keeps_one(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "cover_b16.yaml", overrides)


def test_own_videos_recipe_reads_the_users_folders_from_a_converted_checkpoint():
    config = load_config(CONFIGS / "own_videos.yaml")
    assert [(d.name, d.builder) for d in config.datasets] == [
        ("videos", "video_folder"),
        ("images", "image_folder"),
    ]
    assert config.model.init_checkpoint.endswith(".keras")
    assert config.datasets[1].num_frames == 1
    # Its header says every step, as the commands to type.
    header = (CONFIGS / "own_videos.yaml").read_text().split("\nname:")[0]
    for command in (
        "builders.build video_folder",
        "builders.build image_folder",
        "convert",
        "train --config configs/own_videos.yaml",
        "evaluate",
        "export",
        "predict",
    ):
        assert f"python -m cover_tf.{command}" in header, command


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.stepz=3", r"unknown config key train\.'stepz'.*'steps'"),
        ("modle.num_layers=2", r"unknown config key 'modle'.*'model'"),
        ("datasets.motion.flipp=true", r"unknown config key datasets\[1\]\.'flipp'"),
        ("train.steps=many", r"train\.steps must be an integer"),
        ("datasets.motion.flip=maybe", r"datasets\[1\]\.flip must be true or false"),
        ("train.precision=fp8", r"train\.precision must be one of"),
        ("optimizer.name=lion", r"optimizer\.name must be one of"),
        ("datasets.kinetics.flip=false", r"no dataset named 'kinetics'"),
        ("model.attention_type=axial", r"model\.attention_type must be one of"),
        # What building the model will need, checked before anything is written:
        ("model.image_size=36", r"model\.image_size \(36\) must be a multiple of the patch size 8"),
        ("model.variant=Q/16", r"model\.variant must look like"),
        ("model.num_heads=5", r"model\.num_heads \(5\) must divide model\.hidden_size \(96\)"),
        ("model.num_layers=null", r"model\.variant: name a variant .* model\.num_layers"),
        ("datasets.motion.crop_size=28", r"datasets\.motion\.crop_size \(28\) must be a multiple"),
        ("model.num_frames=0", r"model\.num_frames must be >= 1"),
        ("model.temporal_init=ones", r"model\.temporal_init must be zeros, normal or sinusoidal"),
        ("model.init_heads=false", r"model\.init_heads: false only applies with"),
        ("datasets.motion.name=appearance", r"datasets: names must be unique .*'appearance'"),
        (
            "datasets.motion.name=motion-v2",
            r"datasets\.motion-v2: the name keys the dataset's head",
        ),
        ("datasets.motion.sampling=dense", r"sampling must be one of"),
        ("train.steps", r"KEY=VALUE"),
    ],
)
def test_bad_keys_and_values_name_themselves(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "demo.yaml", [override])


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = load_config(CONFIGS / "demo.yaml", ["train.steps=300"])
    dump_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize("name", ["demo_appearance_only", "demo_motion_only", "demo_videos_only"])
def test_demo_baselines_are_the_demo_recipe_on_fewer_datasets(name):
    """A baseline differs from the co-training demo only in its datasets, or the comparison lies."""
    baseline, demo = load_config(CONFIGS / f"{name}.yaml"), load_config(CONFIGS / "demo.yaml")
    kept = [d.name for d in baseline.datasets]
    assert 0 < len(kept) < len(demo.datasets)
    assert baseline.datasets == [d for d in demo.datasets if d.name in kept]
    for section in ("model", "mixing", "optimizer", "train", "eval", "data_dir"):
        assert getattr(baseline, section) == getattr(demo, section), section


@pytest.mark.parametrize(
    "name",
    ["cover_b16", "cover_l16", "baseline_b16_k400", "baseline_b16_ssv2", "transfer_b16_ssv2"],
)
def test_paper_configs_name_real_builders_and_the_paper_setup(name):
    import tensorflow_datasets as tfds

    from cover_tf.builders import registry

    config = load_config(CONFIGS / f"{name}.yaml")
    project = registry.available_builders()
    for dataset in config.datasets:
        builder = dataset.builder.split("/")[0]
        assert builder in project or builder in tfds.list_builders(), dataset.builder
    assert config.model.variant in ("B/16", "L/16")
    assert config.model.attention_type == "divided_space_time"
    assert config.model.init_checkpoint, "non-temporal weights start from a trained model"
    ssv2 = [d for d in config.datasets if d.builder == "something_something_v2"]
    assert all(d.sampling == "segment" and not d.flip for d in ssv2)
    if name.startswith("cover_"):
        assert {d.builder for d in config.datasets} == {
            "kinetics/400",
            "something_something_v2",
            "moments_in_time",
            "imagenet2012",
        }
        assert config.mixing.alpha == 1.0  # size-proportional sampling
        images = [d for d in config.datasets if d.builder == "imagenet2012"]
        assert images[0].num_frames == 1
    if name.startswith("transfer_"):
        assert not config.model.init_heads  # B gets a new head


@pytest.mark.parametrize("variant, image_size", [("Ti/16", 40), ("S/32", 48), ("B/16", 232)])
def test_image_size_is_checked_against_the_named_variants_patch(variant, image_size):
    overrides = [
        f"model.variant={variant}",
        "model.patch_size=null",
        f"model.image_size={image_size}",
    ]
    with pytest.raises(ConfigError, match=rf"model\.image_size \({image_size}\) .*'{variant}'"):
        load_config(CONFIGS / "demo.yaml", overrides)
    # The variant's own patch size decides (demo's 32 px crops fit 16 and 32): a multiple passes.
    patch = int(variant.split("/")[1])
    config = load_config(CONFIGS / "demo.yaml", [*overrides[:2], f"model.image_size={2 * patch}"])
    assert config.model.image_size == 2 * patch


def test_train_cli_rejects_a_bad_image_size_before_writing_the_workdir(tmp_path):
    workdir = tmp_path / "W"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cover_tf.train",
            "--config",
            str(CONFIGS / "demo.yaml"),
            *("--set", "model.variant=Ti/16", "--set", "model.patch_size=null"),
            *("--set", "model.image_size=40", "--workdir", str(workdir)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train: error: model.image_size (40)"), lines
    assert not workdir.exists()
