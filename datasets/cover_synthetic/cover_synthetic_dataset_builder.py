"""cover_synthetic: the embedded co-training benchmark, rendered procedurally (no files needed).

Configs: `appearance` (Kinetics-like video: what the object is, few training clips), `motion`
(SSv2-like video: how it moves; never train it with horizontal flips), `images` (ImageNet-like
stills of more categories, including every appearance object). See README.md for the classes.
`appearance_2_2`, `motion_2_2` and `images_2_2` build version 2.2.0's pixels (the README's
co-training study was measured on them; TFDS generates only a config's own version).
"""

import dataclasses
import multiprocessing

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from cover_tf.builders import synthetic_render as render
from cover_tf.builders.video_builder import encode_jpeg, video_features

_TASKS = ("appearance", "motion", "images")
_SPLITS = ("train", "test")
# (task, training examples per class, test examples per class, description) of each config.
_TASK_SPLITS = (
    (
        "appearance",
        10,
        84,
        "12 object classes (shape x texture x colour), random motion; few-shot.",
    ),
    (
        "motion",
        480,
        125,
        "8 motion classes, random object, no single frame tells the class; horizontal flips "
        "change the label.",
    ),
    (
        "images",
        400,
        42,
        "24 object classes as still images, including the 12 appearance ones.",
    ),
)


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
    """One task of the synthetic benchmark.

    Args:
      task: "appearance", "motion" or "images".
      train_per_class: training examples per class.
      test_per_class: test examples per class.
      num_frames: frames per clip (video tasks).
      size: frame side in pixels (frames are size x size).
      fps: the "fps" feature of the clips.
      seed: base seed; example i of class c in split s uses seed (seed, task, s, c, i).
      noise: standard deviation of the per-pixel Gaussian noise (0-255 scale).
      jpeg_quality: JPEG quality of the stored frames / images.
      look: how shapes and textures are drawn.
    """

    task: str = "appearance"
    train_per_class: int = 10
    test_per_class: int = 20
    num_frames: int = 16
    size: int = 40
    fps: float = 8.0
    seed: int = 0
    noise: float = 12.0
    jpeg_quality: int = 90
    look: render.Look = render.Look()

    def __post_init__(self):
        if self.task not in _TASKS:
            raise ValueError(f"task must be one of {_TASKS}, got {self.task!r}")
        for field in ("train_per_class", "test_per_class", "num_frames", "size"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be positive, got {getattr(self, field)!r}")


def class_names(task: str) -> list[str]:
    """The class names of a task, in label order."""
    if task == "appearance":
        return [render.object_name(obj) for obj in render.APPEARANCE_OBJECTS]
    if task == "motion":
        return list(render.MOTION_CLASSES)
    if task == "images":
        return [render.object_name(obj) for obj in render.IMAGE_OBJECTS]
    raise ValueError(f"task must be one of {_TASKS}, got {task!r}")


def render_example(config: SyntheticConfig, split: str, label: int, index: int) -> np.ndarray:
    """The pixels of one example: uint8 [T, S, S, 3] clip, or [S, S, 3] image."""
    seed = (config.seed, _TASKS.index(config.task), _SPLITS.index(split), label, index)
    kwargs = {"size": config.size, "noise": config.noise, "look": config.look}
    if config.task == "appearance":
        return render.render_appearance_clip(seed, label, num_frames=config.num_frames, **kwargs)
    if config.task == "motion":
        motion = render.MOTION_CLASSES[label]
        return render.render_motion_clip(seed, motion, num_frames=config.num_frames, **kwargs)
    return render.render_image(seed, label, **kwargs)


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for the procedural cover_synthetic benchmark (see README.md)."""

    VERSION = tfds.core.Version("2.3.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: appearance, motion and images tasks.",
        "2.0.0": "Motion: torus scene, no single frame tells the class; 120 training clips per "
        "class. Test splits of about 1000 examples per task (one run's standard error <= 1.5 "
        "points).",
        "2.1.0": "Motion: twice 2.0.0's per-frame translation, zoom and rotation rates (still the "
        "same for every class), so that a tiny model trained from scratch learns the task.",
        "2.2.0": "Larger training splits, same rendering: motion 480 clips per class (was 120; "
        "the demo model overfitted 960 clips at train 50% / test 28%), images 400 per class (was "
        "150). Test splits unchanged.",
        "2.3.0": "Objects tell their class apart: the diamond is a rhombus (2.2.0's was a square "
        "turned by 45 degrees, the same shape as the square at a random angle), stripes and "
        "checkers are coarser (2.2.0's were 2-4 px wide at the demo's 32 px). Same seeds, "
        "positions, sizes and split sizes. The `*_2_2` configs build 2.2.0.",
    }
    BUILDER_CONFIGS = [
        SyntheticConfig(
            name=f"{task}{suffix}",
            version=version,
            task=task,
            train_per_class=train_per_class,
            test_per_class=test_per_class,
            look=look,
            description=description,
        )
        for suffix, version, look in (
            ("", None, render.Look()),  # the builder's VERSION
            ("_2_2", "2.2.0", render.Look(diamond=(0.95, 0.95), stripes=3.0, checker=2.2)),
        )
        for task, train_per_class, test_per_class, description in _TASK_SPLITS
    ]
    pkg_dir_path = epath.Path(__file__).parent

    def _info(self) -> tfds.core.DatasetInfo:
        names = class_names(self.builder_config.task)
        if self.builder_config.task == "images":
            features = tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                    "label": tfds.features.ClassLabel(names=names),
                    "id": tfds.features.Text(),
                }
            )
            keys = ("image", "label")
        else:
            features = video_features(names)
            keys = ("video", "label")
        return self.dataset_info_from_configs(features=features, supervised_keys=keys)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Nothing to download.
        return {split: self._generate_examples(split) for split in _SPLITS}

    def _generate_examples(self, split: str):
        config = self.builder_config
        per_class = config.train_per_class if split == "train" else config.test_per_class
        jobs = [
            (config, split, label, index)
            for label in range(len(class_names(config.task)))
            for index in range(per_class)
        ]
        yield from rendered(jobs)


def encoded_example(job) -> tuple[str, dict]:
    """(key, example) of one `(config, split, label, index)`: rendered, frames JPEG-encoded."""
    config, split, label, index = job
    key = f"{split}_{label:03d}_{index:05d}"
    pixels = render_example(config, split, label, index)
    if config.task == "images":
        example = {"image": encode_jpeg(pixels, config.jpeg_quality)}
    else:
        frames = [encode_jpeg(frame, config.jpeg_quality) for frame in pixels]
        example = {"video": frames, "fps": np.float32(config.fps)}
    example.update(label=label, id=key)
    return key, example


def rendered(jobs, workers: int | None = None):
    """`encoded_example` of every job, in order, on `workers` forked processes (default: one
    per core; rendering is NumPy and OpenCV, ~2-8 ms an example). Examples depend on their
    seed only, so the dataset is the same for any number of workers."""
    workers = multiprocessing.cpu_count() if workers is None else workers
    if workers <= 1 or len(jobs) < 64 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(encoded_example, jobs)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(encoded_example, jobs, chunksize=32)
