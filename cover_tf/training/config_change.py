"""A rerun's config against the one its workdir was trained with.

A workdir's `config.yaml` describes the model and the data its backups hold. A rerun whose config
differs is refused before anything is written, listing the differing keys; `--allow-config-change`
accepts differences only in the fields of `SAFE_TO_CHANGE`, which change neither the model, nor the data
stream, nor the meaning of the optimizer state.
"""

import yaml

from cover_tf.config import ConfigError

# Fields (exact) and sections (ending in ".") safe to change between runs of one workdir.
SAFE_TO_CHANGE = ("train.steps", "eval.")


def plain(value):
    """The YAML-ready form of a config value (tuples become lists)."""
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def config_text(config) -> str:
    """The YAML text of an `ExperimentConfig` that `load_config` reads back."""
    return yaml.safe_dump(plain(config.to_dict()), sort_keys=False)


def flatten(data, prefix="") -> dict:
    """{"model.hidden_size": 32, "datasets.motion.flip": False, ...} of a config mapping."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list) and all(isinstance(item, dict) and "name" in item for item in data):
        items = ((item["name"], item) for item in data)
    else:
        return {prefix: data}
    flat = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differences(old_text: str, config) -> dict:
    """{key: (workdir's value, this run's value)} for every field that differs."""
    try:
        old = yaml.safe_load(old_text)
    except yaml.YAMLError as error:
        raise ConfigError(f"the workdir's config is not valid YAML ({error})") from error
    if not isinstance(old, dict):
        raise ConfigError("the workdir's config is not a mapping of config sections")
    old_flat = flatten(old)
    new_flat = flatten(yaml.safe_load(config_text(config)))
    missing = object()
    return {
        key: (old_flat.get(key, missing), new_flat.get(key, missing))
        for key in sorted(set(old_flat) | set(new_flat))
        if old_flat.get(key, missing) != new_flat.get(key, missing)
    }


def is_safe(key: str) -> bool:
    return any(
        key == safe or (safe.endswith(".") and key.startswith(safe)) for safe in SAFE_TO_CHANGE
    )


def check(old_text: str, config, config_path: str, allow_change: bool) -> dict:
    """The differences when they may go ahead; raises ConfigError naming the keys otherwise."""
    changed = differences(old_text, config)
    refused = {
        key: values for key, values in changed.items() if not allow_change or not is_safe(key)
    }
    if not refused:
        return changed
    listed = ", ".join(
        f"{key}: {_show(old)} -> {_show(new)}" for key, (old, new) in refused.items()
    )
    if allow_change:
        hint = (
            f"--allow-config-change accepts only {', '.join(SAFE_TO_CHANGE)}; "
            "train this config in a new --workdir"
        )
    elif all(is_safe(key) for key in refused):
        hint = "rerun with --allow-config-change to accept them"
    else:
        hint = "train this config in a new --workdir"
    raise ConfigError(f"this config differs from {config_path}: {listed}; {hint}")


def _show(value):
    return "(absent)" if type(value) is object else repr(value)
