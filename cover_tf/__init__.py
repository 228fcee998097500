"""cover_tf: CoVeR (co-training a TimeSformer on videos and images) in TensorFlow/Keras.

Importing the package registers its Keras classes, so `keras.saving.load_model` can read
cover_tf `.keras` files after `import cover_tf`.
"""

from cover_tf import models
from cover_tf.models import CoVeRModel, TimeSformerBackbone, build_cover_model

__version__ = "0.1.0"

__all__ = ["CoVeRModel", "TimeSformerBackbone", "build_cover_model", "models"]
