"""A training run resolves each dataset against its TFDS builder once, and passes it down."""

import keras

from cover_tf.builders import registry
from cover_tf.config import load_config
from cover_tf.data import reader, train_dataset
from cover_tf.training import build_model, evaluate_datasets, prepare_datasets
from tests.training.conftest import REPO, TINY_RUN


def test_prepare_train_and_evaluate_resolve_each_dataset_once(synthetic_data_dir, monkeypatch):
    calls = {"builders": 0, "source_info": 0}

    def counted(name, function):
        def call(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(registry, "get_builder", counted("builders", registry.get_builder))
    monkeypatch.setattr(reader, "source_info", counted("source_info", reader.source_info))
    config = load_config(
        REPO / "configs" / "demo.yaml", [f"data_dir={synthetic_data_dir}", *TINY_RUN]
    )
    datasets, _ = prepare_datasets(config)
    assert calls == {"builders": 3, "source_info": 3}
    assert all(isinstance(cfg, reader.ResolvedDatasetConfig) for cfg in datasets)

    model = build_model(config.model, {cfg.name: cfg.num_classes for cfg in datasets})
    dataset = train_dataset(datasets, config.mixing, (0.5,) * 3, (0.25,) * 3, steps_per_epoch=1)
    _, labels, weights = next(iter(dataset))
    assert set(labels) == set(weights) == {"appearance", "motion", "images"}
    metrics = evaluate_datasets(model, datasets, batch_size=4, max_examples=4)
    assert metrics["motion/num_examples"] == 4
    assert calls == {"builders": 3, "source_info": 3}  # nothing resolved again
    keras.backend.clear_session()
