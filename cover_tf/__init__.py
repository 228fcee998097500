"""cover_tf: CoVeR (co-training a TimeSformer on videos and images) in TensorFlow/Keras.

Importing the package registers its Keras classes, so `keras.saving.load_model` can read
cover_tf `.keras` files after `import cover_tf`. Before its first TensorFlow import it turns on
TensorFlow's oneDNN kernels on x86 CPUs where TensorFlow leaves them off (`cover_tf.cpu`).
"""

from cover_tf import cpu

cpu.enable_onednn()

from cover_tf import models  # noqa: E402  (after enable_onednn: TF reads the flag on load)
from cover_tf.models import CoVeRModel, TimeSformerBackbone, build_cover_model  # noqa: E402

__version__ = "0.1.0"

__all__ = ["CoVeRModel", "TimeSformerBackbone", "build_cover_model", "models"]
