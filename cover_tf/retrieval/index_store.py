"""A folder holding a faiss index of embeddings, what each vector is, and the model that made them.

    INDEX_DIR/manifest.json   {"format", "model", "fingerprint", "fingerprint_version", "dim",
                               "kind", "hnsw_m", "count", "revision"}
    INDEX_DIR/vectors.faiss   the faiss index (row i is item i)
    INDEX_DIR/items.jsonl     one {"path", "kind", "bytes", "mtime"} per row, in row order
    INDEX_DIR/LOCK            while a process writes the folder (`cover_tf.training.lock`)

Search is by inner product on L2-normalised vectors, i.e. cosine similarity. `kind` "flat" is
exact (`IndexFlatIP`); "hnsw" (`IndexHNSWFlat`, inner-product metric) is approximate, needs no
training and grows incrementally: the option for millions of videos (see benchmarks/
retrieval_recall.py for its measured recall). Every path goes through `tf.io.gfile`, so the
folder may be local or a URL (`gs://bucket/index`, `ram://...`): the faiss index travels as
`faiss.serialize_index` bytes.

Writers share a folder safely: `add_to_folder` takes the folder's lock (the training workdir's
lock, waiting up to LOCK_WAIT_SECONDS for another writer), reloads the index when another
process saved it since this one read it (the manifest's `revision` says), adds only the paths it
lacks and saves; so two `retrieval index` runs into one folder keep every file. Files are
replaced by renames, the manifest last; a reader that finds the files disagreeing on the count
while a writer holds the lock waits for it, and a folder that still disagrees, or whose
manifest or items are damaged, is reported in one sentence (IndexFolderError), never used.
"""

import contextlib
import dataclasses
import json
import time
import uuid

import faiss
import numpy as np
import tensorflow as tf

from cover_tf import cli
from cover_tf.training.lock import WorkdirBusy, WorkdirLock
from cover_tf.workdir import join

FORMAT = 1
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
ITEMS = "items.jsonl"
LOCK = "LOCK"
KINDS = ("flat", "hnsw")
# The scheme of `cover_tf.retrieval.embedding.model_fingerprint`; manifests without
# "fingerprint_version" hold scheme 1 (`legacy_model_fingerprint`).
FINGERPRINT_VERSION = 2
LOCK_WAIT_SECONDS = 120.0
READ_RETRY_SECONDS = 0.2
REBUILD = "delete the folder and index again"


class IndexFolderError(cli.UserError):
    """An index folder that cannot be used as asked (one sentence, for the CLI)."""


class ModelMismatchError(IndexFolderError):
    """Embeddings from a model other than the one the index was built with."""


@dataclasses.dataclass
class EmbeddingIndex:
    """Embeddings of files in a faiss index, with the model fingerprint they were made with.

    Args:
      dim: embedding size D.
      fingerprint: the model's fingerprint (`cover_tf.retrieval.embedding.model_fingerprint`).
      model: the model's path, as recorded (search embeds queries with it by default).
      kind: "flat" (exact) or "hnsw" (approximate).
      hnsw_m: neighbours per node of the HNSW graph (memory ~ (D + 2 * hnsw_m) * 4 bytes a row).
      fingerprint_version: the fingerprint's scheme (1: an index written before version 2).
      revision: a token the folder's manifest held when this index was read or saved (None:
        never saved).
    """

    dim: int
    fingerprint: str
    model: str
    kind: str = "flat"
    hnsw_m: int = 32
    items: list = dataclasses.field(default_factory=list)
    index: object = None
    fingerprint_version: int = FINGERPRINT_VERSION
    revision: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.index is None:
            if self.kind == "flat":
                self.index = faiss.IndexFlatIP(self.dim)
            else:
                self.index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
                self.index.hnsw.efConstruction = 80

    def __len__(self) -> int:
        return self.index.ntotal

    def paths(self) -> set:
        return {item["path"] for item in self.items}

    def check_model(self, fingerprint: str, model, legacy_fingerprint=None) -> None:
        """ModelMismatchError unless `fingerprint` is the index's.

        An index of fingerprint scheme 1 is compared with `legacy_fingerprint()` (a callable, as
        that hash reads the whole export) and, when it matches, takes `fingerprint`, which its
        next save records.
        """
        if self.fingerprint_version == FINGERPRINT_VERSION and fingerprint == self.fingerprint:
            return
        if (
            self.fingerprint_version < FINGERPRINT_VERSION
            and legacy_fingerprint is not None
            and legacy_fingerprint() == self.fingerprint
        ):
            self.fingerprint, self.fingerprint_version = fingerprint, FINGERPRINT_VERSION
            return
        raise ModelMismatchError(
            f"the index was built with model {self.model} (fingerprint {self.fingerprint}) "
            f"but {model} has fingerprint {fingerprint}; use the index's model or build a "
            "new index"
        )

    def add(self, vectors: np.ndarray, items: list[dict]) -> None:
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, self.dim)
        if len(vectors) != len(items):
            raise ValueError(f"{len(vectors)} vectors for {len(items)} items")
        self.index.add(vectors)
        self.items.extend(items)

    def search(self, queries: np.ndarray, top: int, ef_search: int = 128):
        """(similarities [Q, k], items [Q][k]) of the `top` nearest rows of each query."""
        queries = np.ascontiguousarray(queries, np.float32).reshape(-1, self.dim)
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(ef_search, top)
        scores, rows = self.index.search(queries, min(top, len(self)))
        found = [[self.items[row] for row in query if row >= 0] for query in rows]
        return scores, found

    def save(self, folder) -> None:
        """Writes the folder (a new revision). Concurrent writers: `add_to_folder`."""
        folder = str(folder)
        tf.io.gfile.makedirs(folder)
        revision = uuid.uuid4().hex
        manifest = {
            "format": FORMAT,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "fingerprint_version": self.fingerprint_version,
            "dim": self.dim,
            "kind": self.kind,
            "hnsw_m": self.hnsw_m,
            "count": len(self),
            "revision": revision,
        }
        _replace(folder, VECTORS, faiss.serialize_index(self.index).tobytes())
        _replace(folder, ITEMS, "".join(json.dumps(item) + "\n" for item in self.items).encode())
        _replace(folder, MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        self.revision = revision

    @classmethod
    def exists(cls, folder) -> bool:
        return tf.io.gfile.exists(join(folder, MANIFEST))

    @classmethod
    def load(cls, folder, wait: bool = True) -> "EmbeddingIndex":
        """The index saved in `folder`. IndexFolderError (one sentence) when there is none, or it
        is damaged or inconsistent; with `wait`, files that disagree while a writer holds the
        folder's lock are read again once it is done (up to LOCK_WAIT_SECONDS)."""
        folder = str(folder)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                return cls._read(folder)
            except _Inconsistent as error:
                writing = wait and tf.io.gfile.exists(join(folder, LOCK))
                if not writing or time.monotonic() > deadline:
                    raise IndexFolderError(str(error)) from None
            time.sleep(READ_RETRY_SECONDS)

    @classmethod
    def _read(cls, folder: str) -> "EmbeddingIndex":
        if not cls.exists(folder):
            raise IndexFolderError(f"{folder!r} holds no index ({MANIFEST} not found)")
        manifest = _manifest(folder)
        try:
            vectors = _read(folder, VECTORS)
            items_text = _read(folder, ITEMS).decode()
        except (OSError, UnicodeDecodeError, tf.errors.OpError) as error:
            raise IndexFolderError(
                f"{folder!r} is not a readable index: {cli.sentence(error)}"
            ) from error
        try:
            index = faiss.deserialize_index(np.frombuffer(vectors, np.uint8))
        except RuntimeError as error:
            raise _Inconsistent(
                f"{folder!r} is not a readable index: {VECTORS} is not a faiss index; {REBUILD}"
            ) from error
        items = _items(folder, items_text)
        if not index.ntotal == len(items) == manifest["count"] or index.d != manifest["dim"]:
            raise _Inconsistent(
                f"{folder!r} is inconsistent: {index.ntotal} vectors, {len(items)} items, "
                f"manifest count {manifest['count']}; {REBUILD}"
            )
        return cls(
            dim=manifest["dim"],
            fingerprint=manifest["fingerprint"],
            model=manifest["model"],
            kind=manifest["kind"],
            hnsw_m=manifest.get("hnsw_m", 32),
            items=items,
            index=index,
            fingerprint_version=manifest.get("fingerprint_version", 1),
            revision=manifest.get("revision"),
        )


class _Inconsistent(IndexFolderError):
    """The folder's files disagree: damaged, or being replaced by a writer."""


# manifest.json: field -> (types, what it must be)
_MANIFEST_FIELDS = {
    "model": (str, "a path"),
    "fingerprint": (str, "a string"),
    "dim": (int, "a positive whole number"),
    "kind": (str, f"one of {', '.join(KINDS)}"),
    "count": (int, "a whole number"),
}


def _manifest(folder: str) -> dict:
    """The parsed manifest, checked field by field (IndexFolderError naming the first wrong)."""
    try:
        manifest = json.loads(_read(folder, MANIFEST))
    except (OSError, tf.errors.OpError) as error:
        raise IndexFolderError(f"{folder!r}: {MANIFEST} cannot be read: {error}") from error
    except ValueError as error:
        raise _Inconsistent(
            f"{folder!r}: {MANIFEST} is not JSON ({cli.sentence(error)}); {REBUILD}"
        ) from error
    if not isinstance(manifest, dict):
        raise _Inconsistent(
            f"{folder!r}: {MANIFEST} holds a {type(manifest).__name__}, not an object; {REBUILD}"
        )
    if manifest.get("format") != FORMAT:
        raise IndexFolderError(
            f"{folder!r}: unknown index format {manifest.get('format')!r} in {MANIFEST} "
            f"(this version reads format {FORMAT})"
        )
    for field, (kind, what) in _MANIFEST_FIELDS.items():
        value = manifest.get(field)
        wrong = not isinstance(value, kind) or isinstance(value, bool)
        wrong = wrong or (field == "dim" and value < 1) or (field == "count" and value < 0)
        wrong = wrong or (field == "kind" and value not in KINDS)
        if wrong:
            found = "none" if field not in manifest else repr(value)
            raise _Inconsistent(
                f"{folder!r}: {MANIFEST} has no valid {field!r} ({what}; found {found}); {REBUILD}"
            )
    return manifest


def _items(folder: str, text: str) -> list[dict]:
    """The rows of items.jsonl, each an object with a "path" string (IndexFolderError naming the
    first line that is not)."""
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise _Inconsistent(
                f"{folder!r}: line {number} of {ITEMS} is not an item "
                f'(an object with a "path"); {REBUILD}'
            )
        items.append(item)
    return items


def revision(folder) -> str | None:
    """The revision of the index saved in `folder` (None: no index, or one saved without)."""
    folder = str(folder)
    if not EmbeddingIndex.exists(folder):
        return None
    return _manifest(folder).get("revision")


@contextlib.contextmanager
def locked(folder, wait_seconds: float = LOCK_WAIT_SECONDS):
    """Holds the index folder's lock (created with the folder), waiting up to `wait_seconds`
    while another process holds it; IndexFolderError naming the holder when it is not freed."""
    folder = str(folder)
    tf.io.gfile.makedirs(folder)
    lock = WorkdirLock(join(folder, LOCK), folder)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            lock.acquire()
            break
        except WorkdirBusy as error:
            if time.monotonic() > deadline:
                record = lock.holder()
                holder = lock.describe(record) if record is not None else "another process"
                raise IndexFolderError(
                    f"the index {folder!r} stayed locked by {holder} for {wait_seconds:g} s; if "
                    f"that process is gone, delete {lock.path} and run again"
                ) from error
        time.sleep(READ_RETRY_SECONDS)
    try:
        yield
    finally:
        lock.release()


def add_to_folder(folder, index, vectors, items: list[dict], new_index, check_model):
    """Adds rows to the index saved in `folder` under its lock; (the index as saved, rows added).

    Args:
      folder: the index folder (any tf.io.gfile path).
      index: this process's copy of the folder's index (None: it had none). When the folder's
        revision differs (another process saved since), the folder's index is loaded instead.
      vectors, items: the rows ([N, D] and N items); a path the index holds already is skipped.
      new_index: () -> an empty EmbeddingIndex, for a folder that has none.
      check_model: (EmbeddingIndex) -> None, raising ModelMismatchError for an index loaded
        here that another model built.
    """
    with locked(folder):
        if not EmbeddingIndex.exists(folder):
            index = new_index()
        elif index is None or index.revision is None or index.revision != revision(folder):
            index = EmbeddingIndex.load(folder, wait=False)  # this process holds the lock
            check_model(index)
        known = index.paths()
        keep = []
        for row, item in enumerate(items):
            if item["path"] not in known:
                known.add(item["path"])
                keep.append(row)
        if keep:
            index.add(np.asarray(vectors)[keep], [items[row] for row in keep])
            index.save(folder)
    return index, len(keep)


def _read(folder: str, name: str) -> bytes:
    with tf.io.gfile.GFile(join(folder, name), "rb") as file:
        return file.read()


def _replace(folder: str, name: str, data: bytes) -> None:
    """Writes `folder/name` through a temporary file and a rename over the old one."""
    temporary = join(folder, name + ".tmp")
    with tf.io.gfile.GFile(temporary, "wb") as file:
        file.write(data)
    tf.io.gfile.rename(temporary, join(folder, name), overwrite=True)
