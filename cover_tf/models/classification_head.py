"""A per-dataset classification head."""

import keras

from cover_tf.layers import TokenDense


@keras.saving.register_keras_serializable(package="cover_tf")
class ClassificationHead(keras.layers.Layer):
    """Maps pooled backbone features to one dataset's class logits.

    Dropout, an optional hidden Dense layer with GELU, then a linear layer to the classes.
    Logits are always float32, whatever the compute dtype (safe for mixed precision losses).

    Args:
        num_classes: int, number of classes of the dataset.
        hidden_dim: int or None, width of an optional hidden layer. Default None (linear head).
        dropout_rate: float, dropout on the features. Default 0.
        kernel_initializer: initializer of the output layer; `"zeros"` gives the zero-initialised
            heads used when adding heads to a pre-trained backbone. Default truncated normal 0.02.

    Input: `[B, D]`. Output: logits `[B, num_classes]` in float32.
    """

    def __init__(
        self, num_classes, hidden_dim=None, dropout_rate=0.0, kernel_initializer=None, **kwargs
    ):
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got num_classes={num_classes!r}")
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.dropout_rate = dropout_rate
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.TruncatedNormal(stddev=0.02)
        )
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy, name="dropout")
        self.hidden = None
        if hidden_dim:
            self.hidden = TokenDense(
                hidden_dim, activation="gelu", dtype=self.dtype_policy, name="hidden"
            )
        self.logits = TokenDense(
            num_classes, kernel_initializer=self.kernel_initializer, dtype="float32", name="logits"
        )

    def build(self, input_shape):
        width = input_shape[-1]
        if self.hidden is not None:
            self.hidden.build((None, width))
            width = self.hidden_dim
        self.logits.build((None, width))

    def call(self, features, training=None):
        features = self.dropout(features, training=training)
        if self.hidden is not None:
            features = self.hidden(features)
        return self.logits(features)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "hidden_dim": self.hidden_dim,
                "dropout_rate": self.dropout_rate,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
