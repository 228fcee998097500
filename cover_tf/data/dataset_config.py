"""Typed per-dataset input config (`DatasetConfig`) and the mixing config (`MixingConfig`).

Plain dataclasses with defaults, meant to be embedded in the training config schema. `validate()`
raises ValueError naming the field and its allowed values. Defaults follow TimeSformer's Kinetics
recipe (8 frames, stride 32, 224 crop, train short side in [256, 320], test 1 clip x 3 crops).
"""

import dataclasses

SAMPLINGS = ("strided", "segment")
BOUNDARIES = ("clamp", "wrap")
EVAL_CROPS = (1, 3)
CACHES = ("none", "encoded", "decoded")


@dataclasses.dataclass
class RandAugmentConfig:
    """RandAugment (Cubuk et al. 2019), applied with the same ops to every frame of a clip.

    Attributes:
      num_layers: ops applied in sequence (N in the paper).
      magnitude: shared op magnitude (M in the paper), 0..30 in TF Models' scale.
      magnitude_std: per-op gaussian jitter of the magnitude (timm's "mstd").
    """

    num_layers: int = 2
    magnitude: float = 9.0
    magnitude_std: float = 0.5

    def validate(self) -> None:
        if self.num_layers < 1:
            raise ValueError(f"randaugment.num_layers must be >= 1, got {self.num_layers}")
        if not 0 <= self.magnitude <= 30:
            raise ValueError(f"randaugment.magnitude must be in [0, 30], got {self.magnitude}")


@dataclasses.dataclass
class DatasetConfig:
    """Input config of one dataset of the co-training mixture.

    Attributes:
      name: the key tying the dataset's builder, head, metrics and export signature together.
      builder: TFDS name, e.g. "kinetics/400", "cover_synthetic/motion", "imagenet2012".
      data_dir: TFDS data_dir holding the prepared data (None: TFDS's default).
      train_split, eval_split: TFDS split names.
      weight: explicit mixing weight; None = size^alpha from the train split size.
      num_classes: None = read from the builder's "label" ClassLabel.
      is_image: None = infer from the features ("image" vs "video").
      num_frames: frames T per training / eval clip (images always give 1 frame).
      frame_stride: distance between sampled frames for "strided" sampling.
      sampling: "strided" (Kinetics / MiT: random strided clip) or "segment" (SSv2: T equal
        segments, a random frame of each in training, the centre frame at test).
      boundary: "clamp" (repeat the last frame) or "wrap" for clips longer than the video.
      crop_size: output side of the square crops.
      train_short_side_range: (min, max) short side of the training scale jitter.
      eval_short_side: short side the frames are resized to before the eval crops.
      flip: random horizontal flip in training (False for SSv2-like motion labels).
      randaugment: None = off.
      mixup_alpha, cutmix_alpha: Beta parameters; 0 = off. Pairs are always from this dataset.
      mix_batch_size: size of the same-dataset mini-batches mixup / cutmix pair samples within.
      label_smoothing: epsilon of the label smoothing applied to the one-hot training labels.
      eval_clips, eval_crops: views per video at test (clips x crops; crops in (1, 3)).
      cache: the training split kept in memory after its first read: "none" (read from disk
        every epoch, file order and a shuffle buffer of `mixing.*_shuffle_buffer`), "encoded"
        (the examples as stored, ~the split's size on disk) or "decoded" (JPEG frames decoded
        once to uint8: 3x that for the demo's 40x40 frames, more for larger ones; no decoding
        per step). A cached split is shuffled whole
        in every epoch's stream. For small splits: on 2 cores the demo's per-step input cost
        (reading an example cost more than decoding its frames) took ~20% of its step.
    """

    name: str = ""
    builder: str = ""
    data_dir: str | None = None
    train_split: str = "train"
    eval_split: str = "validation"
    weight: float | None = None
    num_classes: int | None = None
    is_image: bool | None = None
    num_frames: int = 8
    frame_stride: int = 32
    sampling: str = "strided"
    boundary: str = "clamp"
    crop_size: int = 224
    train_short_side_range: tuple[int, int] = (256, 320)
    eval_short_side: int = 224
    flip: bool = True
    randaugment: RandAugmentConfig | None = None
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_batch_size: int = 8
    label_smoothing: float = 0.0
    eval_clips: int = 1
    eval_crops: int = 3
    cache: str = "none"

    def validate(self) -> None:
        if not self.name:
            raise ValueError("dataset name must be a non-empty string")
        if not self.builder:
            raise ValueError(f"dataset {self.name!r}: builder must be a TFDS name")
        if self.sampling not in SAMPLINGS:
            raise ValueError(
                f"{self.name}.sampling must be one of {SAMPLINGS}, got {self.sampling!r}"
            )
        if self.boundary not in BOUNDARIES:
            raise ValueError(
                f"{self.name}.boundary must be one of {BOUNDARIES}, got {self.boundary!r}"
            )
        if self.cache not in CACHES:
            raise ValueError(f"{self.name}.cache must be one of {CACHES}, got {self.cache!r}")
        if self.eval_crops not in EVAL_CROPS:
            raise ValueError(
                f"{self.name}.eval_crops must be one of {EVAL_CROPS}, got {self.eval_crops}"
            )
        for field in ("num_frames", "frame_stride", "crop_size", "eval_clips", "mix_batch_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"{self.name}.{field} must be >= 1, got {getattr(self, field)}")
        low, high = self.train_short_side_range
        if not self.crop_size <= low <= high:
            raise ValueError(
                f"{self.name}.train_short_side_range must satisfy crop_size <= min <= max, "
                f"got {self.train_short_side_range} with crop_size {self.crop_size}"
            )
        if self.eval_short_side < self.crop_size:
            raise ValueError(
                f"{self.name}.eval_short_side must be >= crop_size ({self.crop_size}), "
                f"got {self.eval_short_side}"
            )
        if self.weight is not None and self.weight < 0:
            raise ValueError(f"{self.name}.weight must be >= 0 or None, got {self.weight}")
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ValueError(f"{self.name}.mixup_alpha and cutmix_alpha must be >= 0")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"{self.name}.label_smoothing must be in [0, 1), got {self.label_smoothing}"
            )
        if self.randaugment is not None:
            self.randaugment.validate()


@dataclasses.dataclass
class MixingConfig:
    """How the datasets' streams are mixed into training batches.

    Attributes:
      alpha: dataset weights are proportional to train_split_size ** alpha (1.0 = the paper's
        size-proportional sampling, 0 = uniform); explicit `DatasetConfig.weight`s override.
      video_batch_size: batch size of every video shape group (one group per T x crop).
      image_batch_size: batch size of the image group (1-frame clips).
      video_shuffle_buffer: examples (whole JPEG sequences: keep small) in each video shuffle buffer.
      image_shuffle_buffer: examples in each image dataset's shuffle buffer.
      seed: seed of every random choice of the pipeline (file order, shuffle, crops, sampling).
      deterministic: `tf.data.Options.deterministic` (False lets parallel maps reorder).
      num_parallel_calls: parallelism of the per-example preprocessing map (-1 = AUTOTUNE).
    """

    alpha: float = 1.0
    video_batch_size: int = 8
    image_batch_size: int = 64
    video_shuffle_buffer: int = 64
    image_shuffle_buffer: int = 1024
    seed: int = 0
    deterministic: bool = False
    num_parallel_calls: int = -1

    def validate(self) -> None:
        if self.alpha < 0:
            raise ValueError(f"mixing.alpha must be >= 0, got {self.alpha}")
        for field in (
            "video_batch_size",
            "image_batch_size",
            "video_shuffle_buffer",
            "image_shuffle_buffer",
        ):
            if getattr(self, field) < 1:
                raise ValueError(f"mixing.{field} must be >= 1, got {getattr(self, field)}")
        if self.num_parallel_calls < 1 and self.num_parallel_calls != -1:
            raise ValueError(
                f"mixing.num_parallel_calls must be >= 1 or -1 (AUTOTUNE), "
                f"got {self.num_parallel_calls}"
            )
