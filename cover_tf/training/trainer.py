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

Tests: the element-spec build in tests/training/test_trainer.py (which also shows stock Keras
still reads a batch, so an upgrade that fixes it says so), the log reduction in
tests/training/test_multi_worker.py (two workers on loopback; fails without it).
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


def train_step_with_batch_axis(model, data):
    """`Trainer.train_step` whose logs reduce across workers (tensorflow/tensorflow#72388)."""
    import tensorflow as tf  # only attached on the TensorFlow backend

    logs = type(model).train_step(model, data)
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
