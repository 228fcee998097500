"""A rerun's config against its workdir's: differing keys named, only safe fields accepted."""

import pytest

from cover_tf.config import ConfigError, load_config
from cover_tf.training import config_change
from tests.training.conftest import REPO

DEMO = REPO / "configs" / "demo.yaml"


def test_the_same_config_has_no_differences():
    config = load_config(DEMO)
    text = config_change.config_text(config)
    assert config_change.check(text, load_config(DEMO), "w/config.yaml", False) == {}


def test_a_model_change_is_refused_even_when_changes_are_allowed():
    text = config_change.config_text(load_config(DEMO))
    changed = load_config(DEMO, ["model.hidden_size=64", "datasets.motion.flip=true"])
    for allow in (False, True):
        with pytest.raises(ConfigError) as error:
            config_change.check(text, changed, "w/config.yaml", allow)
        message = str(error.value)
        assert "model.hidden_size: 96 -> 64" in message
        assert "datasets.motion.flip: False -> True" in message
        assert "new --workdir" in message


def test_safe_changes_need_the_flag():
    original = load_config(DEMO)
    text = config_change.config_text(original)
    steps = 2 * original.train.steps
    changed = load_config(DEMO, [f"train.steps={steps}", "eval.batch_size=8"])
    with pytest.raises(ConfigError, match="--allow-config-change"):
        config_change.check(text, changed, "w/config.yaml", False)
    accepted = config_change.check(text, changed, "w/config.yaml", True)
    assert accepted == {
        "eval.batch_size": (original.eval.batch_size, 8),
        "train.steps": (original.train.steps, steps),
    }


def test_an_unreadable_workdir_config_is_a_sentence():
    with pytest.raises(ConfigError, match="not valid YAML"):
        config_change.check("a: [", load_config(DEMO), "w/config.yaml", False)
