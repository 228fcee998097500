"""Optimizer, schedule, masked per-head losses and per-dataset metrics for `Model.compile`."""

import types

import keras

from cover_tf.training.trainer import attach_trainer, xla_one_frame_pass

# Parameters without weight decay: norms, biases and the embeddings (substring match on names).
NO_DECAY = ("gamma", "beta", "bias", "cls_token", "position_embedding", "time_embedding")


def learning_rate_schedule(optimizer_config, total_steps):
    """Linear warmup to `learning_rate`, then cosine decay over the remaining steps."""
    warmup = min(optimizer_config.warmup_steps, max(total_steps - 1, 0))
    decay_steps = max(total_steps - warmup, 1)
    if warmup:
        return keras.optimizers.schedules.CosineDecay(
            0.0,
            decay_steps,
            alpha=optimizer_config.final_learning_rate_ratio,
            warmup_target=optimizer_config.learning_rate,
            warmup_steps=warmup,
        )
    return keras.optimizers.schedules.CosineDecay(
        optimizer_config.learning_rate,
        decay_steps,
        alpha=optimizer_config.final_learning_rate_ratio,
    )


def build_optimizer(optimizer_config, total_steps):
    """AdamW or SGD (momentum) with warmup + cosine, global-norm clipping, decay exclusions and
    optional gradient accumulation, all Keras 3's own."""
    schedule = learning_rate_schedule(optimizer_config, total_steps)
    common = {
        "global_clipnorm": optimizer_config.clip_norm or None,
        "gradient_accumulation_steps": (
            optimizer_config.gradient_accumulation_steps
            if optimizer_config.gradient_accumulation_steps > 1
            else None
        ),
    }
    if optimizer_config.name == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate=schedule, weight_decay=optimizer_config.weight_decay, **common
        )
    elif optimizer_config.name == "sgd":
        optimizer = keras.optimizers.SGD(
            learning_rate=schedule,
            momentum=optimizer_config.momentum,
            weight_decay=optimizer_config.weight_decay or None,
            **common,
        )
    else:
        raise ValueError(f"optimizer.name must be 'adamw' or 'sgd', got {optimizer_config.name!r}")
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return xla_fused_updates(optimizer) if optimizer_config.xla_update else optimizer


def xla_fused_updates(optimizer):
    """Runs `optimizer`'s update of all variables as one XLA-compiled function (this instance
    only; returns it).

    Keras applies clipping, weight decay and the AdamW / SGD update variable by variable, about
    40 small ops each: 2848 ops per step of the tiny benchmark config, 11 ms of a 207 ms step on
    one core and 20 ms of 162 on two, where dispatching tiny ops to the thread pool costs more
    than it saves. Compiled, the same Keras update code (the same arithmetic, fused) runs as a
    few kernels. It applies on the TensorFlow backend without a distribution strategy (a
    strategy's cross-replica update keeps Keras' own path; a `Model.fit(jit_compile=True)`
    step is compiled whole anyway). Saving is unaffected: the optimizer is still Keras' class.
    """
    if keras.backend.backend() != "tensorflow":
        return optimizer
    import tensorflow as tf

    stock = optimizer._backend_apply_gradients
    compiled = {}  # one function per list of variables (the function captures them)

    def apply_gradients(self, grads, trainable_variables):
        if tf.distribute.has_strategy():
            return stock(grads, trainable_variables)
        key = tuple(id(variable) for variable in trainable_variables)
        if key not in compiled:
            compiled[key] = tf.function(
                lambda grads: stock(grads, trainable_variables), jit_compile=True
            )
        return compiled[key](list(grads))

    optimizer._backend_apply_gradients = types.MethodType(apply_gradients, optimizer)
    return optimizer


def head_losses(head_names):
    """One categorical cross-entropy (on logits, soft labels) per head.

    With the data pipeline's per-head sample weights (1 for the sample's own head, 0 otherwise)
    and Keras' default `sum_over_batch_size` reduction, the total loss is the mean over the batch
    of each sample's loss on its own head: every sample counts the same, whichever dataset it
    comes from, so the mixing weights alone decide the datasets' shares.
    """
    return {name: keras.losses.CategoricalCrossentropy(from_logits=True) for name in head_names}


def head_metrics(head_names):
    """Per-dataset top-1 / top-5 accuracy, weighted by the head masks (pass as
    `weighted_metrics`): each head's accuracy counts only its own dataset's samples. Keras logs
    them as `<head>_top1` and `<head>_top5`."""
    return {
        name: [
            keras.metrics.CategoricalAccuracy(name="top1"),
            keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"),
        ]
        for name in head_names
    }


def compile_model(model, optimizer_config, total_steps, jit_compile=False, xla_one_frame=False):
    """Compiles a `CoVeRModel` with the optimizer, masked per-head losses and metrics, the
    trainer workarounds attached (`cover_tf.training.trainer`); with `xla_one_frame` (and not
    `jit_compile`, which compiles the whole step), image batches of a mixed stream train
    through XLA (`trainer.xla_one_frame_pass`)."""
    attach_trainer(model)
    if xla_one_frame and not jit_compile:
        xla_one_frame_pass(model)
    model.compile(
        optimizer=build_optimizer(optimizer_config, total_steps),
        loss=head_losses(model.head_names),
        weighted_metrics=head_metrics(model.head_names),
        jit_compile=jit_compile,
    )
    return model
