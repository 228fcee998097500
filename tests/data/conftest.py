"""Tiny real TFDS datasets for the input pipeline tests, prepared once per session in a tmp dir.

`FramesTestBuilder` stores the builders' contract: videos as JPEG frame sequences
({"video", "label", "id", "fps"}) or JPEG images ({"image", "label", "id"}); frame t of example i
is a flat colour whose red channel encodes t (so tests can read back which frames were sampled).
"""

import dataclasses

import numpy as np
import pytest
import tensorflow_datasets as tfds

from cover_tf.data.dataset_config import DatasetConfig

MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)


@dataclasses.dataclass
class FramesConfig(tfds.core.BuilderConfig):
    kind: str = "video"
    num_train: int = 8
    num_validation: int = 4
    num_frames: int = 16
    height: int = 40
    width: int = 48
    num_classes: int = 3


class FramesTestBuilder(tfds.core.GeneratorBasedBuilder):
    """Procedural videos / images with the feature schema of cover_tf's builders."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [FramesConfig(name="default")]

    def _info(self):
        config = self.builder_config
        features = {
            "label": tfds.features.ClassLabel(num_classes=config.num_classes),
            "id": tfds.features.Text(),
        }
        if config.kind == "video":
            features["video"] = tfds.features.Video(
                shape=(None, None, None, 3), encoding_format="jpeg"
            )
            features["fps"] = tfds.features.Scalar(dtype=np.float32)
        elif config.kind == "image":
            features["image"] = tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg")
        else:
            raise ValueError(f"kind must be one of ('video', 'image'), got {config.kind!r}")
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
        config = self.builder_config
        return {
            "train": self._generate_examples(config.num_train, 0),
            "validation": self._generate_examples(config.num_validation, 1),
        }

    def _generate_examples(self, num_examples, split_seed):
        config = self.builder_config
        rng = np.random.default_rng(split_seed)
        for i in range(num_examples):
            label = i % config.num_classes
            frames = np.empty((config.num_frames, config.height, config.width, 3), np.uint8)
            for t in range(config.num_frames):
                frames[t, ..., 0] = 8 * t + 4
                frames[t, ..., 1] = 40 * label + 20
                frames[t, ..., 2] = rng.integers(0, 255)
            example = {"label": label, "id": f"{split_seed}_{i}"}
            if config.kind == "video":
                example.update(video=frames, fps=25.0)
            else:
                example.update(image=frames[0])
            yield example["id"], example


def make_builder(data_dir, name, **kwargs):
    """Prepares (once) and returns a FramesTestBuilder for FramesConfig(name, **kwargs)."""
    builder = FramesTestBuilder(config=FramesConfig(name=name, **kwargs), data_dir=str(data_dir))
    builder.download_and_prepare(file_format="tfrecord")
    return builder


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="session")
def video_builder(data_dir):
    return make_builder(data_dir, "video16", kind="video", num_frames=16, num_train=8)


@pytest.fixture(scope="session")
def image_builder(data_dir):
    return make_builder(data_dir, "image", kind="image", num_frames=1, num_train=8, num_classes=5)


def video_config(**kwargs) -> DatasetConfig:
    """A small video DatasetConfig (4 frames x 32 px crops)."""
    defaults = dict(
        name="motion",
        builder="frames_test_builder",
        num_frames=4,
        frame_stride=2,
        crop_size=32,
        train_short_side_range=(40, 48),
        eval_short_side=32,
    )
    return DatasetConfig(**{**defaults, **kwargs})


def image_config(**kwargs) -> DatasetConfig:
    """A small image DatasetConfig (32 px crops)."""
    defaults = dict(
        name="images",
        builder="frames_test_builder",
        crop_size=32,
        train_short_side_range=(40, 48),
        eval_short_side=32,
        eval_crops=1,
    )
    return DatasetConfig(**{**defaults, **kwargs})
