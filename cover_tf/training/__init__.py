"""Training with Keras `fit`: strategies, optimizer, masked per-head losses and metrics, the loop.

The pieces a user's own script needs:

    datasets, class_names = prepare_datasets(config)   # DatasetConfigs with num_classes filled
    strategy = select_strategy("auto")
    with strategy.scope():
        model = build_model(config.model, {d.name: d.num_classes for d in datasets})
        compile_model(model, config.optimizer, total_steps=..., jit_compile=False)
    model.fit(cover_tf.data.train_dataset(datasets, config.mixing, mean, std), ...)

(README.md has a complete, tested example.)
"""

from cover_tf.training.compile import build_optimizer, compile_model, head_losses, head_metrics
from cover_tf.training.evaluation import evaluate_datasets
from cover_tf.training.loop import prepare_datasets
from cover_tf.training.model_factory import build_model
from cover_tf.training.strategy import select_strategy
from cover_tf.training.trainer import attach_trainer

__all__ = [
    "attach_trainer",
    "build_model",
    "build_optimizer",
    "compile_model",
    "evaluate_datasets",
    "head_losses",
    "head_metrics",
    "prepare_datasets",
    "select_strategy",
]
