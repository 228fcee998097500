"""cover_tf's input pipeline: pure video ops, TFDS readers, per-dataset preprocessing, mixing.

Public entry points:
  DatasetConfig, MixingConfig, RandAugmentConfig     typed configs (dataset_config)
  train_preprocess, eval_preprocess                  per-clip transforms (preprocessing)
  train_stream, eval_dataset                         per-dataset tf.data pipelines (input_pipeline)
  train_dataset, dataset_weights                     the mixed training dataset (mixing)
"""

from cover_tf.data.dataset_config import DatasetConfig, MixingConfig, RandAugmentConfig
from cover_tf.data.input_pipeline import eval_dataset, train_stream
from cover_tf.data.mixing import dataset_weights, train_dataset
from cover_tf.data.preprocessing import eval_preprocess, train_preprocess

__all__ = [
    "DatasetConfig",
    "MixingConfig",
    "RandAugmentConfig",
    "dataset_weights",
    "eval_dataset",
    "eval_preprocess",
    "train_dataset",
    "train_preprocess",
    "train_stream",
]
