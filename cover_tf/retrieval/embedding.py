"""Embedding video and image files with an exported CoVeR model, for retrieval.

A video is streamed (`VideoStream`, bounded memory whatever its length) and cut into windows of
one clip each (num_frames x frame_stride frames of the model's longest head clip); each window goes
through the export's `embedding` signature (the backbone's pooled feature, averaged over the eval
views, L2-normalised) and the video's embedding is the mean of its windows' embeddings,
L2-normalised again. An image is a one-frame video. A model is identified by its fingerprint, a
hash of its weights and embedding signatures (`model_fingerprint`), so an index accepts a
re-export of its model and refuses queries embedded by another model.
"""

import functools
import hashlib
import json
import pathlib

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from cover_tf.builders.video_decode import VideoDecodeError
from cover_tf.retrieval.index_store import FINGERPRINT_VERSION
from cover_tf.serving.heads import EVAL_FIELDS
from cover_tf.serving.predictors import make_predictor
from cover_tf.serving.signatures import EMBEDDING_SIGNATURE
from cover_tf.serving.timeline import clip_geometry
from cover_tf.serving.versions import METADATA_FILE
from cover_tf.serving.video_stream import (
    VIDEO_EXTENSIONS,
    VideoStream,
    default_window,
    sliding_windows,
)
from cover_tf.workdir import is_local, join

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


class UnreadableFileError(Exception):
    """A file that cannot be embedded.

    Args:
      path: the file.
      reason: what is wrong with it, in words.
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot embed {self.path!r}: {reason}")


def media_kind(path) -> str | None:
    """ "video", "image" or None (not a media file), from the file name's extension."""
    suffix = pathlib.Path(path).suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    elif suffix in IMAGE_EXTENSIONS:
        return "image"
    else:
        return None


CHECKPOINT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def model_fingerprint(path) -> str:
    """What makes an export's embeddings, hashed (sha256, 32 hex digits), so that a re-export of
    the same model gets the same fingerprint and another model a different one:

    - every variable of its checkpoint: key, dtype, shape and value (the weights);
    - the inputs and outputs (names, dtypes, shapes) of its `embedding*` signatures;
    - its metadata's `embedding` entry and the eval preprocessing of the embedding head
      (`heads.EVAL_FIELDS`), which decide the views the embedding averages over.

    The bytes of saved_model.pb and of the checkpoint's object graph are left out: they differ
    between two exports of the same weights (function names, object ids). Read through
    `tf.io.gfile` (a local folder or a URL such as `gs://bucket/exports/cover/3`).
    """
    path = str(path).rstrip("/")
    digest = hashlib.sha256(f"cover_tf export fingerprint {FINGERPRINT_VERSION}\0".encode())
    # The prefix itself: `load_checkpoint` takes ram://.../variables/variables for a folder.
    reader = tf.compat.v1.train.NewCheckpointReader(join(path, "variables", "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    for key in sorted(dtypes):
        if key == CHECKPOINT_GRAPH_KEY:
            continue
        value = np.ascontiguousarray(reader.get_tensor(key))
        digest.update(f"{key}\0{dtypes[key].name}\0{list(value.shape)}\0".encode())
        digest.update(value.tobytes())
    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(join(path, "saved_model.pb"), "rb") as file:
        proto.ParseFromString(file.read())
    described = {}
    for meta_graph in proto.meta_graphs:
        for name, signature in meta_graph.signature_def.items():
            if name.startswith(EMBEDDING_SIGNATURE):
                described[name] = {
                    side: {
                        key: [info.dtype, [dim.size for dim in info.tensor_shape.dim]]
                        for key, info in getattr(signature, side).items()
                    }
                    for side in ("inputs", "outputs")
                }
    metadata_path = join(path, METADATA_FILE)
    metadata = {}
    if tf.io.gfile.exists(metadata_path):
        with tf.io.gfile.GFile(metadata_path) as file:
            metadata = json.loads(file.read())
    embedding = metadata.get("embedding") or {}
    eval_config = (metadata.get("heads") or {}).get(embedding.get("head"), {}).get("eval") or {}
    described["metadata"] = {
        "embedding": embedding,
        "eval": {field: eval_config.get(field) for field in EVAL_FIELDS},
    }
    digest.update(json.dumps(described, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def legacy_model_fingerprint(path) -> str:
    """The fingerprint indexes recorded before FINGERPRINT_VERSION 2: sha256 of the bytes of
    saved_model.pb and every file under variables/ (a re-export of the same weights differs)."""
    path = str(path).rstrip("/")
    digest = hashlib.sha256()
    variables = join(path, "variables")
    names = ["saved_model.pb"]
    if tf.io.gfile.isdir(variables):
        for root, _, files in tf.io.gfile.walk(variables):
            names += [join(root, name)[len(path) + 1 :] for name in files]
    for name in [names[0], *sorted(names[1:])]:
        file = join(path, name)
        if tf.io.gfile.exists(file) and not tf.io.gfile.isdir(file):
            digest.update(name.encode() + b"\0")
            with tf.io.gfile.GFile(file, "rb") as stream:
                for block in iter(lambda stream=stream: stream.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:32]


def embedding_heads(predictor) -> tuple:
    """The heads whose clip sets the window: the export's embedding head when it is a video head,
    else every head (an image embedding head would make one window per frame)."""
    head = getattr(predictor, "embedding_head", None)
    head = head or getattr(predictor, "metadata", {}).get("embedding", {}).get("head")
    if head is not None and clip_geometry(predictor, (head,))[0] > 1:
        return (head,)
    return tuple(predictor.head_names)


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class FileEmbedder:
    """Embeds files with an export's `embedding` signature (see the module doc).

    Args:
      model: an export folder (a version, or the export base: its highest version).
      window: seconds per video window; None: the model's longest head clip at the video's rate.
      short_side: decode videos at this short side; None: the heads' largest eval short side.

    Attributes:
      path: the SavedModel version folder used.
      fingerprint: `model_fingerprint(path)`.
      legacy_fingerprint: `legacy_model_fingerprint(path)`, computed when first asked for (an
        index written before FINGERPRINT_VERSION 2 recorded it).
    """

    def __init__(self, model, window: float | None = None, short_side: int | None = None):
        self.predictor = make_predictor(model)
        if not hasattr(self.predictor, "embed"):
            raise ValueError(f"{str(model)!r} is not an export folder with an embedding signature")
        path = self.predictor.path
        self.path = pathlib.Path(path).resolve() if is_local(path) else str(path)
        self.fingerprint = model_fingerprint(self.path)
        self.window = window
        self.span, eval_short_side = clip_geometry(self.predictor, embedding_heads(self.predictor))
        self.short_side = short_side or eval_short_side

    @functools.cached_property
    def legacy_fingerprint(self) -> str:
        return legacy_model_fingerprint(self.path)

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """float32 [D] of uint8 frames [T, H, W, 3] (the export's contract)."""
        try:
            return np.asarray(self.predictor.embed(frames), np.float32)
        except tf.errors.InvalidArgumentError as error:
            reason = error.message.strip().splitlines()
            reason = next((line for line in reason if "assertion failed" in line), reason[-1])
            raise ValueError(f"the model refused the input: {reason}") from error

    def embed_video(self, path) -> np.ndarray:
        with VideoStream(path, short_side=self.short_side) as stream:
            window = self.window or default_window(self.span, 1, stream.fps)
            total, count = None, 0
            for clip in sliding_windows(stream, stream.fps, window, window):
                vector = self.embed_frames(clip.frames)
                total = vector if total is None else total + vector
                count += 1
        return normalise(total / count)

    def embed_image(self, path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                frame = np.asarray(image.convert("RGB"), np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise UnreadableFileError(path, f"{type(error).__name__}: {error}") from error
        if self.short_side is not None and min(frame.shape[:2]) > 2 * self.short_side:
            frame = tf.image.resize(
                frame, _short_side_size(frame.shape[:2], self.short_side), antialias=True
            )
            frame = np.asarray(tf.cast(tf.round(frame), tf.uint8))
        return normalise(self.embed_frames(frame[None]))

    def embed_file(self, path) -> tuple[str, np.ndarray]:
        """(kind, float32 [D]) of a video or image file; UnreadableFileError when it cannot be."""
        kind = media_kind(path)
        if kind is None:
            raise UnreadableFileError(path, "not a video or image file (by its extension)")
        path = pathlib.Path(path)
        if not path.is_file():
            raise UnreadableFileError(path, "file not found")
        try:
            if kind == "video":
                return kind, self.embed_video(path)
            return kind, self.embed_image(path)
        except VideoDecodeError as error:
            raise UnreadableFileError(path, error.reason) from error
        except ValueError as error:
            raise UnreadableFileError(path, str(error)) from error


def _short_side_size(size, short_side: int) -> tuple[int, int]:
    height, width = size
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))
