"""The optimizer update compiled as one XLA function trains exactly like Keras' own update."""

import dataclasses

import keras
import numpy as np
import pytest

from cover_tf.config import OptimizerConfig
from cover_tf.training.compile import build_optimizer


def train(optimizer_config, fused, steps=12):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.layers.Dense(64, activation="gelu"), keras.layers.LayerNormalization(),
         keras.layers.Dense(10)]
    )  # fmt: skip
    model.build((None, 32))
    initial = [weight.numpy() for weight in model.weights]
    optimizer_config = dataclasses.replace(optimizer_config, xla_update=fused)
    optimizer = build_optimizer(optimizer_config, total_steps=steps)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(steps * 16, 32)).astype("float32"), rng.integers(0, 10, steps * 16)
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    return model, optimizer, initial


@pytest.mark.parametrize(
    "optimizer_config",
    [
        OptimizerConfig(learning_rate=1e-2, warmup_steps=3, weight_decay=0.05, clip_norm=0.5),
        OptimizerConfig(name="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-3),
        OptimizerConfig(learning_rate=1e-2, gradient_accumulation_steps=2),
    ],
    ids=["adamw_clip_decay", "sgd_momentum", "accumulation"],
)
def test_compiled_update_trains_like_keras_own(optimizer_config):
    fused_model, fused, initial = train(optimizer_config, fused=True)
    stock_model, stock, _ = train(optimizer_config, fused=False)
    assert type(fused) is type(stock)  # still Keras' class: saving and loading are unaffected
    assert "_backend_apply_gradients" in vars(fused)  # the compiled path was attached
    assert "_backend_apply_gradients" not in vars(stock)
    assert int(fused.iterations) == int(stock.iterations) > 0
    for ours, theirs, start in zip(fused_model.weights, stock_model.weights, initial, strict=True):
        assert np.abs(ours.numpy() - start).max() > 1e-3  # trained
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5)
