"""Training with Keras `fit`: strategies, optimizer, masked per-head losses and metrics, the loop.

The pieces a user's own script needs:

    strategy = select_strategy("auto")
    with strategy.scope():
        model = build_model(config.model, heads)          # {dataset_name: num_classes}
        compile_model(model, config.optimizer, total_steps=..., jit_compile=False)
    model.fit(cover_tf.data.train_dataset(...), steps_per_epoch=..., epochs=...)
"""

from cover_tf.training.compile import build_optimizer, compile_model, head_losses, head_metrics
from cover_tf.training.evaluation import evaluate_datasets
from cover_tf.training.model_factory import build_model
from cover_tf.training.strategy import select_strategy

__all__ = [
    "build_model",
    "build_optimizer",
    "compile_model",
    "evaluate_datasets",
    "head_losses",
    "head_metrics",
    "select_strategy",
]
