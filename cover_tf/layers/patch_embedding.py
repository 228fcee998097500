"""Patch embedding (frame-wise or tubelet) with CLS token, spatial position and time embeddings."""

import keras
from keras import ops

from cover_tf.layers.backend_ops import dense, resize_bilinear


@keras.saving.register_keras_serializable(package="cover_tf")
class PatchEmbedding(keras.layers.Layer):
    """Embeds every frame of a clip into patch tokens and adds position and time embeddings.

    A `patch_size` x `patch_size` convolution with stride `patch_size` runs on every frame
    (TimeSformer's embedding, `tubelet_size` 1), or with `tubelet_size` k > 1 a `k` x
    `patch_size` x `patch_size` convolution with time stride 1 (a tubelet embedding, as ViViT's
    but keeping one token per frame) over frame t's window t - c ... t + k - 1 - c, c =
    (k - 1) // 2, edge frames repeated past the clip's ends. The window enters in difference
    form: kernel slice c sees frame t itself, every other slice the difference of two
    consecutive frames (slice i < c: f[i + 1] - f[i]; i > c: f[i] - f[i - 1]). It is the same
    family of linear maps as a plain tubelet, but it starts the model with a motion cue: trained
    from scratch for 600 steps on cover_synthetic's motion set, this form reached 58% test top-1
    and the plain one stayed at chance (README, "Results"). A still image (or a still clip) has
    zero differences, so only slice c acts on it, and a frame-wise kernel put in slice c (the
    others zero) gives back the frame-wise model exactly.

    With `tubelet_stride` s > 1 only every s-th frame's window is embedded (frames 0, s, 2s,
    ...): ceil(T / s) tokens along time, each still seeing its k consecutive frames (windows
    that do not overlap when s = k, as ViViT's tubelets), s times fewer tokens along time.

    A learned CLS token and a learned spatial position embedding (N + 1 tokens for the
    configured `image_size`) are added; a learned time embedding (ceil(`num_frames` / s) steps,
    zero-initialised) is added to the patch tokens only. T and the patch grid are read from the
    input: when they differ from the configured ones, the position embedding is resized by 2-D
    bilinear interpolation and the time embedding by 1-D linear interpolation (both exact
    identities at the configured size).

    Args:
        hidden_size: int, token width D.
        patch_size: int, patch side P in pixels.
        image_size: int, frame side the position embedding is learned for.
        num_frames: int, clip length the time embedding is learned for.
        use_time_embedding: bool, whether to add a time embedding (False for `space_only`).
        dropout_rate: float, dropout on the embedded tokens. Default 0.
        tubelet_size: int, frames each patch token sees (1: frame-wise, the reference's).
            Default 1.
        tubelet_stride: int, frames between the windows of consecutive tokens along time.
            Default 1 (one token per frame).

    Input: frames `[B, T, H, W, C]`. Output: `(cls_tokens [B, 1, D], patch_tokens [B, T', N, D])`
    with T' = ceil(T / `tubelet_stride`), N = (H // P) * (W // P), patches in row-major order.
    """

    def __init__(
        self,
        hidden_size,
        patch_size,
        image_size,
        num_frames,
        use_time_embedding=True,
        dropout_rate=0.0,
        tubelet_size=1,
        tubelet_stride=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if image_size % patch_size:
            raise ValueError(
                f"image_size={image_size} must be a multiple of patch_size={patch_size}"
            )
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got num_frames={num_frames!r}")
        if not isinstance(tubelet_size, int) or tubelet_size < 1:
            raise ValueError(f"tubelet_size must be an int >= 1, got {tubelet_size!r}")
        if not isinstance(tubelet_stride, int) or tubelet_stride < 1:
            raise ValueError(f"tubelet_stride must be an int >= 1, got {tubelet_stride!r}")
        self.hidden_size = hidden_size
        self.patch_size = patch_size
        self.image_size = image_size
        self.num_frames = num_frames
        self.use_time_embedding = use_time_embedding
        self.dropout_rate = dropout_rate
        self.tubelet_size = tubelet_size
        self.tubelet_stride = tubelet_stride
        self.grid_size = image_size // patch_size
        # The projection's weight owner (kernel [P, P, C, D], or [k, P, P, C, D] for tubelets):
        # `_project` computes it as one matmul and never calls the layer.
        conv, kernel_size, strides = keras.layers.Conv2D, patch_size, patch_size
        if tubelet_size > 1:
            conv = keras.layers.Conv3D
            kernel_size, strides = (
                (tubelet_size, patch_size, patch_size),
                (tubelet_stride, patch_size, patch_size),
            )
        self.projection = conv(
            hidden_size,
            kernel_size=kernel_size,
            strides=strides,
            padding="valid",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=self.dtype_policy,
            name="projection",
        )
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape):
        channels = input_shape[-1]
        spatial = (None,) * (3 if self.tubelet_size == 1 else 4)
        self.projection.build(spatial + (channels,))
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
                shape=(1, self.time_steps, self.hidden_size),
                initializer="zeros",
                name="time_embedding",
            )

    def resized_position_embedding(self, grid_height, grid_width):
        """Patch position embedding `[1, 1, h*w, D]` for a `grid_height` x `grid_width` grid."""
        patch_pos = self.position_embedding[:, 1:]
        if isinstance(grid_height, int) and (grid_height, grid_width) == (self.grid_size,) * 2:
            return patch_pos[:, None]
        grid = ops.reshape(patch_pos, (1, self.grid_size, self.grid_size, self.hidden_size))
        grid = self._resize(grid, grid_height, grid_width)
        return ops.reshape(grid, (1, 1, -1, self.hidden_size))

    @property
    def time_steps(self):
        """Steps of the time embedding: tokens along time of a `num_frames` clip."""
        return self.tokens_along_time(self.num_frames)

    def tokens_along_time(self, frames):
        """Tokens along time of a clip of `frames` frames (an int or a scalar tensor)."""
        return (frames + self.tubelet_stride - 1) // self.tubelet_stride

    def resized_time_embedding(self, steps):
        """Time embedding `[1, T', 1, D]` for `steps` tokens along time."""
        if isinstance(steps, int) and steps == self.time_steps:
            return self.time_embedding[:, :, None]
        embedding = self.time_embedding[:, :, None]  # [1, T0, 1, D]: time as image height
        return self._resize(embedding, steps, 1)

    def _resize(self, embedding, height, width):
        """Bilinear resize of an embedding `[1, h, w, D]`, computed in float32, returned in the
        embedding's dtype. A float16 or bfloat16 input to `tf.image.resize` (its output is
        float32) would break an XLA-compiled gradient: XLA's ResizeBilinearGrad returns float32
        where the graph expects the input's dtype, and the slice's gradient before it then mixes
        the two ("Seen floating point types of different precisions", TF 2.20)."""
        resized = resize_bilinear(ops.cast(embedding, "float32"), height, width)
        return ops.cast(resized, embedding.dtype)

    def call(self, frames, training=None):
        shape = ops.shape(frames)
        batch, num_frames = shape[0], shape[1]
        static_frames = frames.shape[1]
        grid_height, grid_width = (
            self._grid(frames.shape[2], shape[2]),
            self._grid(frames.shape[3], shape[3]),
        )
        steps = self.tokens_along_time(num_frames if static_frames is None else static_frames)
        patches = self._project(frames, grid_height, grid_width)
        patches = ops.reshape(patches, (batch, steps, -1, self.hidden_size))
        patches = patches + self.resized_position_embedding(grid_height, grid_width)
        if self.use_time_embedding:
            patches = patches + self.resized_time_embedding(steps)
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
        dropped; every `tubelet_stride`-th frame's window) computed as one matmul over the
        flattened patches `[B*T'*h*w, k*p*p*C]`: the same weights and values as calling the
        convolution, and a backward pass of one matmul (oneDNN's convolution filter gradient
        took 8-9% of the tiny benchmark config's training step)."""
        size, channels, tubelet = self.patch_size, frames.shape[-1], self.tubelet_size
        pixels = frames[:, :, : grid_height * size, : grid_width * size]
        if tubelet > 1:
            pixels = self._difference_windows(pixels)
        if self.tubelet_stride > 1:
            pixels = pixels[:, :: self.tubelet_stride]
        pixels = ops.reshape(pixels, (-1, tubelet, grid_height, size, grid_width, size, channels))
        pixels = ops.transpose(pixels, (0, 2, 4, 1, 3, 5, 6))
        pixels = ops.reshape(pixels, (-1, tubelet * size * size * channels))
        kernel = ops.reshape(
            ops.cast(self.projection.kernel, self.compute_dtype), (-1, self.hidden_size)
        )
        bias = ops.cast(self.projection.bias, self.compute_dtype)
        return dense(ops.cast(pixels, self.compute_dtype), kernel, bias)

    def _difference_windows(self, pixels):
        """`[B, T, k, H, W, C]`: every frame's window in difference form (see the class doc)."""
        tubelet, num_frames = self.tubelet_size, ops.shape(pixels)[1]
        centre = (tubelet - 1) // 2
        edges = [pixels[:, :1]] * centre + [pixels] + [pixels[:, -1:]] * (tubelet - 1 - centre)
        padded = ops.concatenate(edges, axis=1)
        window = [padded[:, i : i + num_frames] for i in range(tubelet)]
        before = [window[i + 1] - window[i] for i in range(centre)]
        after = [window[i] - window[i - 1] for i in range(centre + 1, tubelet)]
        return ops.stack(before + [window[centre]] + after, axis=2)

    def compute_output_shape(self, input_shape):
        batch, frames, height, width = input_shape[:4]
        patches = None
        if height is not None and width is not None:
            patches = (height // self.patch_size) * (width // self.patch_size)
        steps = None if frames is None else self.tokens_along_time(frames)
        return (batch, 1, self.hidden_size), (batch, steps, patches, self.hidden_size)

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
                "tubelet_size": self.tubelet_size,
                "tubelet_stride": self.tubelet_stride,
            }
        )
        return config
