"""cover_tf: CoVeR (co-training a TimeSformer on videos and images) in TensorFlow/Keras."""

__version__ = "0.1.0"
