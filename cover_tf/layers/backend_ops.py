"""The few ops the layers need beyond `keras.ops`, per Keras backend.

The layers are written in `keras.ops`, so the same model runs on Keras' TensorFlow backend (the
product: training, export, serving) and on its JAX backend (how `benchmarks/gpu_throughput.py`
measures the model on a GPU machine where TensorFlow cannot be installed). These differ:

- splitting off the CLS token: on TensorFlow `tf.split`, whose gradient is one concatenation and
  which takes dynamic sizes (`ops.split` needs the split axis' static length, and slicing's
  gradient is a zero-filled `StridedSliceGrad` of the whole tensor per slice: ~20% of the tiny
  benchmark config's training step);
- softmax: the backend's own, as `ops.softmax` warns on every trace where the axis has length 1,
  which temporal attention over a 1-frame image legitimately has;
- bilinear resizing to a size that may be a dynamic tensor (TensorFlow graphs) or a static int;
- stateless uniform noise from an explicit seed and deriving one seed from another (`fold_in`),
  which rematerialised blocks use to replay their drop path masks.
"""

import keras
from keras import ops

BACKEND = keras.backend.backend()

if BACKEND == "tensorflow":
    import tensorflow as tf
elif BACKEND == "jax":
    import jax


def split_leading(tokens, num_leading, axis):
    """`(tokens[..., :num_leading, ...], tokens[..., num_leading:, ...])` along `axis`."""
    if BACKEND == "tensorflow":
        return tf.split(tokens, [num_leading, -1], axis=axis)
    return ops.split(tokens, [num_leading], axis=axis)


def softmax(scores):
    """Softmax over the last axis."""
    if BACKEND == "tensorflow":
        return tf.nn.softmax(scores, axis=-1)
    if BACKEND == "jax":
        return jax.nn.softmax(scores, axis=-1)
    return ops.softmax(scores, axis=-1)


def resize_bilinear(images, height, width):
    """Bilinear resize of `[B, h, w, C]` to `height` x `width` (ints or scalar tensors), half-pixel
    centres, no antialiasing."""
    if BACKEND == "tensorflow":
        return tf.image.resize(images, tf.stack([height, width]), method="bilinear")
    return ops.image.resize(images, (height, width), interpolation="bilinear", antialias=False)


def stateless_uniform(shape, seed, dtype):
    """Uniform [0, 1) noise of `shape` drawn from the int seed tensor `seed` `[2]`: the same seed
    gives the same noise."""
    if BACKEND == "tensorflow":
        return tf.random.stateless_uniform(shape, seed=seed, dtype=dtype)
    if BACKEND == "jax":
        return keras.random.uniform(shape, dtype=dtype, seed=seed)
    raise NotImplementedError(f"stateless drop path masks are not implemented on {BACKEND!r}")


def fold_in(seed, index):
    """A seed `[2]` derived from `seed` and the int `index`, independent of the others."""
    if BACKEND == "tensorflow":
        return tf.random.experimental.stateless_fold_in(seed, index)
    if BACKEND == "jax":
        return jax.random.fold_in(seed, index)
    raise NotImplementedError(f"stateless drop path masks are not implemented on {BACKEND!r}")
