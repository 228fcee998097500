"""The trainer seam: workarounds for Keras 3.15 trainer defects, attached to a model for training.

The model classes under `cover_tf/models/` describe the architecture only (and are what a `.keras`
file loads back as). What `Model.fit` needs beyond stock Keras lives here and is attached to one
model instance by `attach_trainer`, which `build_model` and `compile_model` call:

- Under a `tf.distribute` strategy, Keras builds the compiled metrics from a batch it pulls out
  of the *training* stream and `strategy.reduce`s across replicas, then restarts the stream
  (keras-team/keras#20394: before 3.15 that batch was lost). The input pipeline starts twice
  and decodes a batch that is never trained on, and under MultiWorkerMirroredStrategy the reduce
  of the nested batch fails ("PerReplica to Tensor", keras-team/keras#20585).
  `build_from_element_spec` builds from the dataset's element spec instead: the same symbolic
  shapes, no batch read, no collective.
- Under MultiWorkerMirroredStrategy, Keras averages the step's logs across workers with
  `strategy.reduce("MEAN", value, axis=0)`, which fails on scalar logs ("Invalid reduction
  dimension 0", tensorflow/tensorflow#72388). `train_step_with_batch_axis` gives each log the
  batch axis that reduction expects.

- A mixed stream's batches have T unknown in the static shape (videos and images share one
  element spec), so Keras traces one training step in which image batches run the video graph.
  Where the backbone computes a one-frame input more cheaply (`specialises_one_frame`: the
  temporal branch as one matrix product), `train_step_by_clip_length` branches on T at run time
  around the whole forward and backward pass: one-frame batches run a trace with T == 1, clips
  the unchanged one; the optimizer update, loss tracker and metrics stay outside the branch.
  `xla_one_frame_pass` hands that one-frame forward and backward pass to XLA
  (`train.xla_one_frame`): on CPU XLA loses on clips but wins on image batches, whose step is
  hundreds of small ops.

Tests: the element-spec build and the one-frame trace in tests/training/test_trainer.py (which
also shows stock Keras still reads a batch, so an upgrade that fixes it says so), the log
reduction in tests/training/test_multi_worker.py (two workers on loopback; fails without it).
"""

import types

import keras

ATTACHED = "_cover_trainer_attached"


def build_from_element_spec(model, iterator=None, data_batch=None):
    """`Trainer._maybe_symbolic_build` from the element spec, reading no batch (keras#20585)."""
    adapter = getattr(iterator, "data_adapter", None)
    if data_batch is None and adapter is not None and hasattr(adapter, "get_tf_dataset"):
        data_batch = adapter.get_tf_dataset().element_spec
        iterator = None
    return type(model)._maybe_symbolic_build(model, iterator=iterator, data_batch=data_batch)


def _loss_and_gradients(model, frames, y, sample_weight):
    """Keras' forward and backward pass of one batch: (loss, y_pred, gradients); a variable the
    pass does not reach gets a zero gradient (the clip graph's, for the one-frame shortcut)."""
    import tensorflow as tf

    weights = model.trainable_weights
    with tf.GradientTape() as tape:
        y_pred = model(frames, training=True)
        loss = model._compute_loss(
            x=frames, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
        )
        scaled = model.optimizer.scale_loss(loss)
    gradients = tape.gradient(scaled, weights)
    gradients = [
        tf.zeros_like(w) if g is None else g for g, w in zip(gradients, weights, strict=True)
    ]
    return loss, y_pred, gradients


def train_step_by_clip_length(model, data, one_frame_pass=_loss_and_gradients):
    """`Trainer.train_step`, with one-frame batches of a mixed stream on their own trace.

    Keras' step unless the frames' T is unknown in the static shape and the backbone computes
    one frame more cheaply (`specialises_one_frame`); then a `tf.cond` on T runs the forward and
    backward pass either with T == 1 set in the static shape (through `one_frame_pass`, which
    takes `_loss_and_gradients`' arguments) or as it is, and the update, the loss tracker and
    the metrics follow as in Keras.
    """
    import tensorflow as tf
    from keras.src.losses.loss import unscale_loss_for_distribution
    from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight

    frames, y, sample_weight = unpack_x_y_sample_weight(data)
    specialises_one_frame = getattr(getattr(model, "backbone", None), "specialises_one_frame", None)
    if (
        not model.trainable_weights
        or not isinstance(frames, tf.Tensor)
        or frames.shape.rank != 5
        or frames.shape[1] is not None
        or specialises_one_frame is None
        or not specialises_one_frame(training=True)
    ):
        return type(model).train_step(model, data)

    def one_frame():
        # The static shape only: a runtime check (`tf.ensure_shape`) here failed on clip
        # batches once the batch size was static (TF ran it although the branch was not taken).
        one = tf.identity(frames)
        one.set_shape([frames.shape[0], 1, *frames.shape[2:]])
        return one_frame_pass(model, one, y, sample_weight)

    loss, y_pred, gradients = tf.cond(
        tf.equal(tf.shape(frames)[1], 1),
        one_frame,
        lambda: _loss_and_gradients(model, frames, y, sample_weight),
    )
    model._loss_tracker.update_state(
        unscale_loss_for_distribution(loss), sample_weight=tf.shape(frames)[0]
    )
    model.optimizer.apply_gradients(zip(gradients, model.trainable_weights, strict=True))
    return model.compute_metrics(frames, y, y_pred, sample_weight=sample_weight)


def train_step_with_batch_axis(model, data, one_frame_pass=_loss_and_gradients):
    """`Trainer.train_step` whose logs reduce across workers (tensorflow/tensorflow#72388)."""
    import tensorflow as tf  # only attached on the TensorFlow backend

    logs = train_step_by_clip_length(model, data, one_frame_pass)
    strategy = model.distribute_strategy
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    ):
        logs = {key: keras.ops.reshape(value, (1,)) for key, value in logs.items()}
    return logs


def attach_trainer(model):
    """Attaches the workarounds to `model` (this instance only) and returns it.

    Idempotent. A no-op on backends other than TensorFlow, whose trainers have neither defect.
    Saving is unaffected: a `.keras` file still loads as the model's own class.
    """
    if keras.backend.backend() != "tensorflow" or getattr(model, ATTACHED, False):
        return model
    model._maybe_symbolic_build = types.MethodType(build_from_element_spec, model)
    model.train_step = types.MethodType(train_step_with_batch_axis, model)
    setattr(model, ATTACHED, True)
    return model


def xla_one_frame_pass(model):
    """Runs the forward and backward pass of a mixed stream's one-frame batches as one
    XLA-compiled function (this instance only; returns it); `attach_trainer` first.

    A one-frame batch of the demo's tiny model is hundreds of small ops, whose dispatch costs
    more than their arithmetic; compiled, the same Keras code runs as a few fused kernels (the
    demo's mixed stream on a 2-core Xeon: 78.8 vs 87.1 ms per step, 1-13 s to compile once;
    README "Speed"). Clips keep TF's kernels, where XLA is slower on CPU. A no-op on other
    backends, and where `train_step_by_clip_length` takes Keras' own step (no one-frame trace).
    """
    if keras.backend.backend() != "tensorflow":
        return model
    import tensorflow as tf

    compiled = tf.function(
        lambda frames, y, sample_weight: _loss_and_gradients(model, frames, y, sample_weight),
        jit_compile=True,
    )

    def one_frame_pass(model, frames, y, sample_weight):
        return compiled(frames, y, sample_weight)

    def train_step(model, data):
        return train_step_with_batch_axis(model, data, one_frame_pass)

    model.train_step = types.MethodType(train_step, model)
    return model
