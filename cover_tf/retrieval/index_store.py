"""A folder holding a faiss index of embeddings, what each vector is, and the model that made them.

    INDEX_DIR/manifest.json   {"format", "model", "fingerprint", "dim", "kind", "hnsw_m", "count"}
    INDEX_DIR/vectors.faiss   the faiss index (row i is item i)
    INDEX_DIR/items.jsonl     one {"path", "kind", "bytes", "mtime"} per row, in row order

Search is by inner product on L2-normalised vectors, i.e. cosine similarity. `kind` "flat" is
exact (`IndexFlatIP`); "hnsw" (`IndexHNSWFlat`, inner-product metric) is approximate, needs no
training and grows incrementally: the option for millions of videos (see benchmarks/
retrieval_recall.py for its measured recall). Files are replaced by renames, the manifest last; a
folder whose files disagree on the count is reported as inconsistent, never used. Every path goes
through `tf.io.gfile`, so the folder may be local or a URL (`gs://bucket/index`, `ram://...`): the
faiss index travels as `faiss.serialize_index` bytes.
"""

import dataclasses
import json

import faiss
import numpy as np
import tensorflow as tf

from cover_tf.workdir import join

FORMAT = 1
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
ITEMS = "items.jsonl"
KINDS = ("flat", "hnsw")


class IndexFolderError(Exception):
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
    """

    dim: int
    fingerprint: str
    model: str
    kind: str = "flat"
    hnsw_m: int = 32
    items: list = dataclasses.field(default_factory=list)
    index: object = None

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

    def check_model(self, fingerprint: str, model) -> None:
        if fingerprint != self.fingerprint:
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
        folder = str(folder)
        tf.io.gfile.makedirs(folder)
        manifest = {
            "format": FORMAT,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "dim": self.dim,
            "kind": self.kind,
            "hnsw_m": self.hnsw_m,
            "count": len(self),
        }
        _replace(folder, VECTORS, faiss.serialize_index(self.index).tobytes())
        _replace(folder, ITEMS, "".join(json.dumps(item) + "\n" for item in self.items).encode())
        _replace(folder, MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())

    @classmethod
    def exists(cls, folder) -> bool:
        return tf.io.gfile.exists(join(folder, MANIFEST))

    @classmethod
    def load(cls, folder) -> "EmbeddingIndex":
        folder = str(folder)
        if not cls.exists(folder):
            raise IndexFolderError(f"{folder!r} holds no index ({MANIFEST} not found)")
        try:
            manifest = json.loads(_read(folder, MANIFEST))
            if manifest.get("format") != FORMAT:
                raise IndexFolderError(f"{folder!r}: unknown index format {manifest.get('format')}")
            index = faiss.deserialize_index(np.frombuffer(_read(folder, VECTORS), np.uint8))
            items = [json.loads(line) for line in _read(folder, ITEMS).decode().splitlines()]
        except (OSError, ValueError, RuntimeError, tf.errors.OpError) as error:
            raise IndexFolderError(f"{folder!r} is not a readable index: {error}") from error
        if not index.ntotal == len(items) == manifest["count"] or index.d != manifest["dim"]:
            raise IndexFolderError(
                f"{folder!r} is inconsistent: {index.ntotal} vectors, {len(items)} items, "
                f"manifest count {manifest['count']}; rebuild it"
            )
        return cls(
            dim=manifest["dim"],
            fingerprint=manifest["fingerprint"],
            model=manifest["model"],
            kind=manifest["kind"],
            hnsw_m=manifest.get("hnsw_m", 32),
            items=items,
            index=index,
        )


def _read(folder: str, name: str) -> bytes:
    with tf.io.gfile.GFile(join(folder, name), "rb") as file:
        return file.read()


def _replace(folder: str, name: str, data: bytes) -> None:
    """Writes `folder/name` through a temporary file and a rename over the old one."""
    temporary = join(folder, name + ".tmp")
    with tf.io.gfile.GFile(temporary, "wb") as file:
        file.write(data)
    tf.io.gfile.rename(temporary, join(folder, name), overwrite=True)
