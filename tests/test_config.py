"""The experiment config: YAML onto typed dataclasses, overrides, errors that name the key."""

import pathlib

import pytest

from cover_tf.config import ConfigError, ExperimentConfig, dump_config, load_config

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def test_demo_config_loads_with_typed_values():
    config = load_config(CONFIGS / "demo.yaml")
    assert isinstance(config, ExperimentConfig)
    assert [d.name for d in config.datasets] == ["appearance", "motion", "images"]
    motion = config.datasets[1]
    assert motion.flip is False and motion.train_short_side_range == (32, 40)
    assert config.optimizer.learning_rate == 0.001 and isinstance(
        config.optimizer.learning_rate, float
    )
    # data_dir of the experiment reaches every dataset block that does not set its own
    assert all(d.data_dir == "runs/tensorflow_datasets" for d in config.datasets)


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
