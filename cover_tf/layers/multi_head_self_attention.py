"""Multi-head self-attention with one fused query/key/value projection."""

import keras
from keras import ops

from cover_tf.layers.backend_ops import softmax
from cover_tf.layers.token_layers import TokenDense


@keras.saving.register_keras_serializable(package="cover_tf")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention over the second axis of `[B, S, D]`.

    Queries, keys and values come from one fused `D -> 3D` projection laid out `(3, heads,
    head_dim)`, as in the ViT/TimeSformer reference implementations, followed by an output
    projection `D -> D`. Softmax runs in float32 whatever the compute dtype.

    Args:
        num_heads: int, number of attention heads; must divide the input width.
        qkv_bias: bool, whether the fused projection has a bias. Default True.
        attention_dropout_rate: float, dropout on the attention probabilities. Default 0.
        dropout_rate: float, dropout on the output projection. Default 0.
        kernel_initializer: initializer of both projections. Default truncated normal, std 0.02.

    Input: `[B, S, D]`. Output: `[B, S, D]`.
    """

    def __init__(
        self,
        num_heads,
        qkv_bias=True,
        attention_dropout_rate=0.0,
        dropout_rate=0.0,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got num_heads={num_heads!r}")
        self.num_heads = num_heads
        self.qkv_bias = qkv_bias
        self.attention_dropout_rate = attention_dropout_rate
        self.dropout_rate = dropout_rate
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.TruncatedNormal(stddev=0.02)
        )
        self.qkv = None
        self.proj = None
        self.attention_dropout = keras.layers.Dropout(
            attention_dropout_rate, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.output_dropout = keras.layers.Dropout(
            dropout_rate, dtype=self.dtype_policy, name="output_dropout"
        )

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must divide the input width {width} "
                f"(input shape {tuple(input_shape)})"
            )
        self.head_dim = width // self.num_heads
        self.qkv = TokenDense(
            3 * width,
            use_bias=self.qkv_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="qkv",
        )
        self.qkv.build(input_shape)
        self.proj = TokenDense(
            width, kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy, name="proj"
        )
        self.proj.build(input_shape)

    def call(self, inputs, training=None):
        shape = ops.shape(inputs)
        batch, length, width = shape[0], shape[1], inputs.shape[-1]
        qkv = ops.reshape(self.qkv(inputs), (batch, length, 3, self.num_heads, self.head_dim))
        # One transpose to [3, B, heads, S, head_dim], then a split along the leading axis (its
        # gradient is one concatenation; slicing qkv[:, :, i] costs a zero-filled
        # StridedSliceGrad of qkv's size per slice), so that neither matmul transposes.
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))
        query, key, value = (ops.squeeze(part, 0) for part in ops.split(qkv, 3, axis=0))
        query = query * ops.cast(self.head_dim**-0.5, query.dtype)
        scores = ops.matmul(query, ops.swapaxes(key, -1, -2))
        probs = ops.cast(softmax(ops.cast(scores, "float32")), value.dtype)
        probs = self.attention_dropout(probs, training=training)
        context = ops.transpose(ops.matmul(probs, value), (0, 2, 1, 3))
        context = ops.reshape(context, (batch, length, width))
        return self.output_dropout(self.proj(context), training=training)

    def is_linear_on_one_token(self, training=None):
        """Whether the layer over a sequence of one token (S = 1) is the linear map of
        `single_key_map`: the softmax over one score is 1, so the output is the value projection
        followed by the output projection, unless dropout is active in training or a projection
        runs Keras' own `call` (LoRA, quantisation). Temporal attention over a 1-frame image is
        such a sequence."""
        active_dropout = training and (self.attention_dropout_rate or self.dropout_rate)
        return not active_dropout and self.qkv.runs_own_kernel and self.proj.runs_own_kernel

    def single_key_map(self):
        """`(kernel [D, D], bias [D])` of that map, in the variables' dtype."""
        width = self.proj.kernel.shape[0]
        value_kernel = ops.split(self.qkv.kernel, [2 * width], axis=1)[1]
        kernel = ops.matmul(value_kernel, self.proj.kernel)
        bias = self.proj.bias
        if self.qkv.bias is not None:
            bias = bias + ops.matmul(ops.split(self.qkv.bias, [2 * width])[1], self.proj.kernel)
        return kernel, bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "qkv_bias": self.qkv_bias,
                "attention_dropout_rate": self.attention_dropout_rate,
                "dropout_rate": self.dropout_rate,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
