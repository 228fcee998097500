"""EmbeddingIndex: exact and HNSW search, save/load round trip, model checks, broken folders."""

import json

import numpy as np
import pytest

from cover_tf.retrieval.embedding import normalise
from cover_tf.retrieval.index_store import (
    MANIFEST,
    EmbeddingIndex,
    IndexFolderError,
    ModelMismatchError,
)


def vectors(rows, dim=16, seed=0):
    return normalise(np.random.default_rng(seed).normal(size=(rows, dim)))


def items(start, count):
    return [{"path": f"/v/{i}.mp4", "kind": "video"} for i in range(start, start + count)]


@pytest.mark.parametrize(
    "kind, filesystem", [("flat", "local"), ("hnsw", "local"), ("flat", "ram"), ("hnsw", "ram")]
)
def test_search_finds_the_nearest_and_survives_a_round_trip(tmp_path, kind, filesystem):
    """Local folders and tf.io.gfile URLs (ram:// stands in for gs://: same gfile calls)."""
    folder = str(tmp_path) if filesystem == "local" else f"ram://index-{kind}"
    data = vectors(300)
    index = EmbeddingIndex(16, "abc", "/models/1", kind=kind)
    index.add(data[:200], items(0, 200))
    index.save(folder)
    loaded = EmbeddingIndex.load(folder)
    loaded.add(data[200:], items(200, 100))  # extended without touching the first 200
    loaded.save(folder)
    loaded = EmbeddingIndex.load(folder)
    assert len(loaded) == 300 and loaded.kind == kind
    queries = normalise(data[[5, 250]] + 0.01 * vectors(2, seed=1))
    scores, found = loaded.search(queries, 3)
    assert [row[0]["path"] for row in found] == ["/v/5.mp4", "/v/250.mp4"]
    exact = queries @ data.T
    np.testing.assert_allclose(scores[:, 0], exact.max(axis=1), rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # by decreasing similarity


def test_a_query_from_another_model_is_refused():
    index = EmbeddingIndex(16, "abc", "/models/1")
    index.check_model("abc", "/models/1")
    with pytest.raises(ModelMismatchError, match="built with model /models/1 .*fingerprint def"):
        index.check_model("def", "/models/2")


def test_broken_folders_are_reported(tmp_path):
    with pytest.raises(IndexFolderError, match="holds no index"):
        EmbeddingIndex.load(tmp_path)
    index = EmbeddingIndex(16, "abc", "/m")
    index.add(vectors(3), items(0, 3))
    index.save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["count"] = 4
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(
        IndexFolderError, match="inconsistent: 3 vectors, 3 items, manifest count 4"
    ):
        EmbeddingIndex.load(tmp_path)


def test_fingerprint_of_an_export_is_the_same_on_any_filesystem(export):
    """The fingerprint reads the export through tf.io.gfile: a copy of the version folder under
    ram:// (gs:// goes through the same calls) has the local folder's fingerprint, and a changed
    variable changes it."""
    import tensorflow as tf

    from cover_tf.retrieval.embedding import model_fingerprint

    local = export["path"]
    remote = "ram://exports/cover/1"
    for root, _, files in tf.io.gfile.walk(local):
        target = remote + root[len(local) :]
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(f"{root}/{name}", f"{target}/{name}", overwrite=True)
    assert model_fingerprint(remote) == model_fingerprint(local)
    data = tf.io.gfile.glob(remote + "/variables/variables.data-*")[0]
    with tf.io.gfile.GFile(data, "ab") as file:
        file.write(b"\0")
    assert model_fingerprint(remote) != model_fingerprint(local)
