"""EmbeddingIndex: exact and HNSW search, save/load round trip, model checks and fingerprints,
writers sharing a folder, broken folders."""

import json

import numpy as np
import pytest

from cover_tf.retrieval.embedding import normalise
from cover_tf.retrieval.index_store import (
    FINGERPRINT_VERSION,
    ITEMS,
    LOCK,
    MANIFEST,
    EmbeddingIndex,
    IndexFolderError,
    ModelMismatchError,
    add_to_folder,
    locked,
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
        IndexFolderError, match="inconsistent: 3 vectors, 3 items, manifest count 4; delete"
    ):
        EmbeddingIndex.load(tmp_path)


def test_fingerprint_of_an_export_is_the_same_on_any_filesystem(export):
    """The fingerprint reads the export through tf.io.gfile: a copy of the version folder under
    ram:// (gs:// goes through the same calls) has the local folder's fingerprint."""
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


def test_a_re_export_of_the_same_weights_is_the_same_model(export, source, tmp_path):
    """Two exports of one model differ in every file's bytes (function names, object ids) but
    share the fingerprint, whatever their top_k; other weights, or another embedding head, do
    not."""
    from cover_tf.retrieval.embedding import legacy_model_fingerprint, model_fingerprint
    from cover_tf.serving.exporter import export_model
    from tests.serving.conftest import LIMITS, tiny_model

    model, specs = source
    again = export_model(model, specs, tmp_path / "again", top_k=2, limits=LIMITS, check=False)
    assert model_fingerprint(again["path"]) == model_fingerprint(export["path"])
    assert legacy_model_fingerprint(again["path"]) != legacy_model_fingerprint(export["path"])
    other_head = export_model(
        model, specs, tmp_path / "head", limits=LIMITS, embedding_head="motion", check=False
    )
    other = tiny_model(seed=1)
    other_weights = export_model(other, specs, tmp_path / "other", limits=LIMITS, check=False)
    fingerprints = {
        model_fingerprint(path)
        for path in (export["path"], other_head["path"], other_weights["path"])
    }
    assert len(fingerprints) == 3


def test_an_index_of_the_old_fingerprint_takes_the_new_one():
    index = EmbeddingIndex(16, "old", "/m", fingerprint_version=1)
    with pytest.raises(ModelMismatchError):
        index.check_model("new", "/m", legacy_fingerprint=lambda: "another")
    index.check_model("new", "/m", legacy_fingerprint=lambda: "old")
    assert (index.fingerprint, index.fingerprint_version) == ("new", FINGERPRINT_VERSION)
    index.check_model("new", "/m")


def test_writers_of_one_folder_keep_each_others_rows(tmp_path):
    """Two processes' views of one folder: the second saves after the first read; the first's
    rows go onto the second's, and a path both embedded is kept once."""
    data = vectors(7)
    first = EmbeddingIndex(16, "abc", "/m")
    first.add(data[:2], items(0, 2))
    first.save(tmp_path)
    mine = EmbeddingIndex.load(tmp_path)
    theirs = EmbeddingIndex.load(tmp_path)
    theirs.add(data[2:5], items(2, 3))
    theirs.save(tmp_path)
    checked = []
    saved, added = add_to_folder(
        tmp_path, mine, data[4:7], items(4, 3), new_index=None, check_model=checked.append
    )
    assert added == 2 and len(checked) == 1  # /v/4.mp4 was there; the reloaded index checked
    loaded = EmbeddingIndex.load(tmp_path)
    assert sorted(item["path"] for item in loaded.items) == [f"/v/{i}.mp4" for i in range(7)]
    assert saved.revision == loaded.revision
    # Nothing saved since: the process's copy is used as it is, without a reload.
    saved, added = add_to_folder(
        tmp_path, saved, data[:1], [{"path": "/v/new.mp4"}], None, check_model=checked.append
    )
    assert added == 1 and len(checked) == 1 and len(EmbeddingIndex.load(tmp_path)) == 8


def test_a_held_lock_is_waited_for_then_named(tmp_path):
    from cover_tf.training.lock import WorkdirLock

    holder = WorkdirLock(str(tmp_path / LOCK), str(tmp_path)).acquire()
    try:
        with pytest.raises(
            IndexFolderError, match=r"stayed locked by pid \d+ on host .* for 0.5 s"
        ):
            with locked(tmp_path, wait_seconds=0.5):
                pass
    finally:
        holder.release()
    with locked(tmp_path):
        assert (tmp_path / LOCK).exists()
    assert not (tmp_path / LOCK).exists()


DAMAGED = {
    "manifest without a count": (
        lambda m, i: ({k: v for k, v in m.items() if k != "count"}, i),
        "manifest.json has no valid 'count' (a whole number; found none)",
    ),
    "manifest that is a list": (
        lambda m, i: ([m], i),
        "manifest.json holds a list, not an object",
    ),
    "manifest that is not JSON": (lambda m, i: ("{", i), "manifest.json is not JSON"),
    "an item line that is not an object": (
        lambda m, i: (m, i[:1] + ["[1, 2]"] + i[2:]),
        'line 2 of items.jsonl is not an item (an object with a "path")',
    ),
    "an item without a path": (
        lambda m, i: (m, i[:2] + ['{"kind": "video"}']),
        "line 3 of items.jsonl is not an item",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_folder_is_one_sentence(tmp_path, case):
    damage, message = DAMAGED[case]
    index = EmbeddingIndex(16, "abc", "/m")
    index.add(vectors(3), items(0, 3))
    index.save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    lines = (tmp_path / ITEMS).read_text().splitlines()
    manifest, lines = damage(manifest, lines)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (tmp_path / MANIFEST).write_text(text)
    (tmp_path / ITEMS).write_text("".join(line + "\n" for line in lines))
    with pytest.raises(IndexFolderError) as raised:
        EmbeddingIndex.load(tmp_path)
    assert message in str(raised.value)
    assert str(raised.value).endswith("; delete the folder and index again")
    assert len(str(raised.value).splitlines()) == 1
