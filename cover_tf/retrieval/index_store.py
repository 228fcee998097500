"""A folder holding a faiss index of embeddings, what each vector is, and the model that made them.

    INDEX_DIR/manifest.json   {"format", "model", "fingerprint", "dim", "kind", "hnsw_m", "count"}
    INDEX_DIR/vectors.faiss   the faiss index (row i is item i)
    INDEX_DIR/items.jsonl     one {"path", "kind", "bytes", "mtime"} per row, in row order

Search is by inner product on L2-normalised vectors, i.e. cosine similarity. `kind` "flat" is
exact (`IndexFlatIP`); "hnsw" (`IndexHNSWFlat`, inner-product metric) is approximate, needs no
training and grows incrementally: the option for millions of videos (see benchmarks/
retrieval_recall.py for its measured recall). Files are replaced atomically, the manifest last; a
folder whose files disagree on the count is reported as inconsistent, never used.
"""

import dataclasses
import json
import os
import pathlib

import faiss
import numpy as np

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
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / (VECTORS + ".tmp")))
        os.replace(folder / (VECTORS + ".tmp"), folder / VECTORS)
        lines = "".join(json.dumps(item) + "\n" for item in self.items)
        (folder / (ITEMS + ".tmp")).write_text(lines)
        os.replace(folder / (ITEMS + ".tmp"), folder / ITEMS)
        manifest = {
            "format": FORMAT,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "dim": self.dim,
            "kind": self.kind,
            "hnsw_m": self.hnsw_m,
            "count": len(self),
        }
        (folder / (MANIFEST + ".tmp")).write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(folder / (MANIFEST + ".tmp"), folder / MANIFEST)

    @classmethod
    def exists(cls, folder) -> bool:
        return (pathlib.Path(folder) / MANIFEST).is_file()

    @classmethod
    def load(cls, folder) -> "EmbeddingIndex":
        folder = pathlib.Path(folder)
        if not cls.exists(folder):
            raise IndexFolderError(f"{str(folder)!r} holds no index ({MANIFEST} not found)")
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            if manifest.get("format") != FORMAT:
                raise IndexFolderError(
                    f"{str(folder)!r}: unknown index format {manifest.get('format')}"
                )
            index = faiss.read_index(str(folder / VECTORS))
            items = [json.loads(line) for line in (folder / ITEMS).read_text().splitlines()]
        except (OSError, ValueError, RuntimeError) as error:
            raise IndexFolderError(f"{str(folder)!r} is not a readable index: {error}") from error
        if not index.ntotal == len(items) == manifest["count"] or index.d != manifest["dim"]:
            raise IndexFolderError(
                f"{str(folder)!r} is inconsistent: {index.ntotal} vectors, {len(items)} items, "
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
