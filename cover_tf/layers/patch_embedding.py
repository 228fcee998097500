"""Frame-wise patch embedding with CLS token, spatial position and time embeddings."""

import keras
from keras import ops

from cover_tf.layers.backend_ops import dense, resize_bilinear


@keras.saving.register_keras_serializable(package="cover_tf")
class PatchEmbedding(keras.layers.Layer):
    """Embeds every frame of a clip into patch tokens and adds position and time embeddings.

    A `patch_size` x `patch_size` convolution with stride `patch_size` runs on every frame; a
    learned CLS token and a learned spatial position embedding (N + 1 tokens for the configured
    `image_size`) are added; a learned time embedding (`num_frames` steps, zero-initialised) is
    added to the patch tokens only. T and the patch grid are read from the input: when they differ
    from the configured ones, the position embedding is resized by 2-D bilinear interpolation and
    the time embedding by 1-D linear interpolation (both exact identities at the configured size).

    Args:
        hidden_size: int, token width D.
        patch_size: int, patch side P in pixels.
        image_size: int, frame side the position embedding is learned for.
        num_frames: int, clip length the time embedding is learned for.
        use_time_embedding: bool, whether to add a time embedding (False for `space_only`).
        dropout_rate: float, dropout on the embedded tokens. Default 0.

    Input: frames `[B, T, H, W, C]`. Output: `(cls_tokens [B, 1, D], patch_tokens [B, T, N, D])`
    with N = (H // P) * (W // P), patches in row-major order.
    """

    def __init__(
        self,
        hidden_size,
        patch_size,
        image_size,
        num_frames,
        use_time_embedding=True,
        dropout_rate=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if image_size % patch_size:
            raise ValueError(
                f"image_size={image_size} must be a multiple of patch_size={patch_size}"
            )
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got num_frames={num_frames!r}")
        self.hidden_size = hidden_size
        self.patch_size = patch_size
        self.image_size = image_size
        self.num_frames = num_frames
        self.use_time_embedding = use_time_embedding
        self.dropout_rate = dropout_rate
        self.grid_size = image_size // patch_size
        self.projection = keras.layers.Conv2D(
            hidden_size,
            kernel_size=patch_size,
            strides=patch_size,
            padding="valid",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=self.dtype_policy,
            name="projection",
        )
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape):
        channels = input_shape[-1]
        self.projection.build((None, None, None, channels))
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.cls_token = self.add_weight(
            shape=(1, 1, self.hidden_size), initializer=init, name="cls_token"
        )
        self.position_embedding = self.add_weight(
            shape=(1, self.grid_size**2 + 1, self.hidden_size),
            initializer=init,
            name="position_embedding",
        )
        self.time_embedding = None
        if self.use_time_embedding:
            self.time_embedding = self.add_weight(
                shape=(1, self.num_frames, self.hidden_size),
                initializer="zeros",
                name="time_embedding",
            )

    def resized_position_embedding(self, grid_height, grid_width):
        """Patch position embedding `[1, 1, h*w, D]` for a `grid_height` x `grid_width` grid."""
        patch_pos = self.position_embedding[:, 1:]
        if isinstance(grid_height, int) and (grid_height, grid_width) == (self.grid_size,) * 2:
            return patch_pos[:, None]
        grid = ops.reshape(patch_pos, (1, self.grid_size, self.grid_size, self.hidden_size))
        grid = resize_bilinear(grid, grid_height, grid_width)
        grid = ops.cast(grid, patch_pos.dtype)
        return ops.reshape(grid, (1, 1, -1, self.hidden_size))

    def resized_time_embedding(self, frames):
        """Time embedding `[1, T, 1, D]` for a clip of `frames` frames."""
        if isinstance(frames, int) and frames == self.num_frames:
            return self.time_embedding[:, :, None]
        steps = self.time_embedding[:, :, None]  # [1, T0, 1, D]: time as image height
        steps = resize_bilinear(steps, frames, 1)
        return ops.cast(steps, self.time_embedding.dtype)

    def call(self, frames, training=None):
        shape = ops.shape(frames)
        batch, num_frames = shape[0], shape[1]
        static_frames = frames.shape[1]
        grid_height, grid_width = (
            self._grid(frames.shape[2], shape[2]),
            self._grid(frames.shape[3], shape[3]),
        )
        patches = self._project(frames, grid_height, grid_width)
        patches = ops.reshape(patches, (batch, num_frames, -1, self.hidden_size))
        patches = patches + self.resized_position_embedding(grid_height, grid_width)
        if self.use_time_embedding:
            patches = patches + self.resized_time_embedding(
                static_frames if static_frames is not None else num_frames
            )
        cls_tokens = ops.broadcast_to(
            self.cls_token + self.position_embedding[:, :1], (batch, 1, self.hidden_size)
        )
        return (
            self.dropout(cls_tokens, training=training),
            self.dropout(patches, training=training),
        )

    def _grid(self, static_size, size):
        """Patches along a side of `size` pixels (a Python int when the size is static)."""
        return (size if static_size is None else static_size) // self.patch_size

    def _project(self, frames, grid_height, grid_width):
        """`projection` (a stride-`patch_size` convolution, pixels past the last whole patch
        dropped) computed as one matmul over the flattened patches `[B*T*h*w, p*p*C]`: the same
        weights and values as calling the Conv2D, and a backward pass of one matmul (oneDNN's
        convolution filter gradient took 8-9% of the tiny benchmark config's training step)."""
        size, channels = self.patch_size, frames.shape[-1]
        pixels = frames[:, :, : grid_height * size, : grid_width * size]
        pixels = ops.reshape(pixels, (-1, grid_height, size, grid_width, size, channels))
        pixels = ops.transpose(pixels, (0, 1, 3, 2, 4, 5))
        pixels = ops.reshape(pixels, (-1, size * size * channels))
        kernel = ops.reshape(
            ops.cast(self.projection.kernel, self.compute_dtype), (-1, self.hidden_size)
        )
        bias = ops.cast(self.projection.bias, self.compute_dtype)
        return dense(ops.cast(pixels, self.compute_dtype), kernel, bias)

    def compute_output_shape(self, input_shape):
        batch, frames, height, width = input_shape[:4]
        patches = None
        if height is not None and width is not None:
            patches = (height // self.patch_size) * (width // self.patch_size)
        return (batch, 1, self.hidden_size), (batch, frames, patches, self.hidden_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_size": self.hidden_size,
                "patch_size": self.patch_size,
                "image_size": self.image_size,
                "num_frames": self.num_frames,
                "use_time_embedding": self.use_time_embedding,
                "dropout_rate": self.dropout_rate,
            }
        )
        return config
