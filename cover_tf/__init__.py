"""cover_tf: CoVeR (co-training a TimeSformer on videos and images) in TensorFlow/Keras.

Importing the package registers its Keras classes, so `keras.saving.load_model` can read
cover_tf `.keras` files after `import cover_tf`. Before its first TensorFlow import it turns on
TensorFlow's oneDNN kernels on x86 CPUs where TensorFlow leaves them off (`cover_tf.cpu`) and,
when a `python -m cover_tf.<command>` runs, hides TensorFlow's start-up lines (`cover_tf.cli`).
"""

from cover_tf import cli, cpu

cpu.enable_onednn()
if cli.running_as_command():  # `python -m cover_tf.<command>`: TF's start-up lines need --verbose
    cli.quiet_tensorflow()

from cover_tf import models  # noqa: E402  (after enable_onednn: TF reads the flag on load)
from cover_tf.models import CoVeRModel, TimeSformerBackbone, build_cover_model  # noqa: E402

__version__ = "0.1.0"

__all__ = ["CoVeRModel", "TimeSformerBackbone", "build_cover_model", "models"]
