"""Retrieval quality and the approximate index's recall, as JSON lines.

    python benchmarks/retrieval_recall.py class --model EXPORT --data-dir runs/tensorflow_datasets
        [--datasets appearance motion images] [--limit N]
    python benchmarks/retrieval_recall.py ann [--rows 100000] [--dims 96 768] [--queries 1000]

`class`: every example of cover_synthetic's train and test splits is embedded with the export's
`embedding` signature; each test example's nearest train example (exact cosine, faiss IndexFlatIP)
is a hit when it has the same label. Printed beside it: chance (the expected recall@1 of a random
train neighbour, sum over classes of p_train(c) * p_test(c)) and the pixel-mean baseline (the
clip's frames averaged over time, resized to 16x16, centred, L2-normalised: 768 numbers).

`ann`: recall@10 of the HNSW index (`EmbeddingIndex(kind="hnsw")`, M=32, efConstruction 80) against
the exact index on synthetic L2-normalised vectors (a mixture of 1000 Gaussian clusters, like
embeddings of many videos of fewer kinds of scene), for several efSearch, with build and search
times on this machine.
"""

import argparse
import json
import pathlib
import sys
import time

import faiss
import numpy as np

from cover_tf.retrieval.embedding import normalise
from cover_tf.retrieval.index_store import EmbeddingIndex


def read_split(folder: pathlib.Path, split: str, limit: int | None):
    """(uint8 clips list of [T, H, W, 3], int labels) of one prepared cover_synthetic split."""
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(str(folder))
    feature = "video" if "video" in builder.info.features else "image"
    dataset = builder.as_dataset(split=split)
    if limit:
        dataset = dataset.take(limit)
    clips, labels = [], []
    for example in tfds.as_numpy(dataset):
        frames = example[feature]
        clips.append(frames if frames.ndim == 4 else frames[None])
        labels.append(int(example["label"]))
    return clips, np.asarray(labels)


def embed_all(predictor, clips, batch: int = 8) -> np.ndarray:
    vectors = []
    for start in range(0, len(clips), batch):
        group = clips[start : start + batch]
        if all(c.shape == group[0].shape for c in group):
            vectors.append(predictor.embed(np.stack(group)))
        else:
            vectors += [predictor.embed(clip)[None] for clip in group]
    return np.concatenate(vectors)


def pixel_mean(clips) -> np.ndarray:
    import tensorflow as tf

    means = [tf.image.resize(clip.mean(axis=0), (16, 16)).numpy().reshape(-1) for clip in clips]
    means = np.stack(means)
    return normalise(means - means.mean(axis=0))


def recall_at_1(train, train_labels, test, test_labels) -> float:
    index = faiss.IndexFlatIP(train.shape[1])
    index.add(np.ascontiguousarray(train, np.float32))
    _, rows = index.search(np.ascontiguousarray(test, np.float32), 1)
    return float(np.mean(train_labels[rows[:, 0]] == test_labels))


def class_recall(args) -> None:
    from cover_tf.serving.predictors import make_predictor

    predictor = make_predictor(args.model)
    for name in args.datasets:
        folder = next((pathlib.Path(args.data_dir) / "cover_synthetic" / name).glob("*"))
        train, train_labels = read_split(folder, "train", args.limit)
        test, test_labels = read_split(folder, "test", args.limit)
        start = time.perf_counter()
        train_vectors, test_vectors = embed_all(predictor, train), embed_all(predictor, test)
        seconds = time.perf_counter() - start
        classes = np.union1d(train_labels, test_labels)
        chance = sum(np.mean(train_labels == c) * np.mean(test_labels == c) for c in classes)
        record = {
            "benchmark": "class_recall@1",
            "dataset": f"cover_synthetic/{name}",
            "train": len(train),
            "test": len(test),
            "classes": len(classes),
            "model": recall_at_1(train_vectors, train_labels, test_vectors, test_labels),
            "pixel_mean": recall_at_1(
                pixel_mean(train), train_labels, pixel_mean(test), test_labels
            ),
            "chance": float(chance),
            "dim": int(train_vectors.shape[1]),
            "embed_clips_per_s": round((len(train) + len(test)) / seconds, 1),
        }
        print(json.dumps(record), flush=True)


def clustered_vectors(rows: int, dim: int, seed: int, clusters: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    members = rng.integers(0, clusters, rows)
    noise = rng.normal(size=(rows, dim)).astype(np.float32)
    return normalise(centres[members] + 0.7 * noise)


def ann_recall(args) -> None:
    for dim in args.dims:
        data = clustered_vectors(args.rows + args.queries, dim, seed=dim)
        base, queries = data[: args.rows], data[args.rows :]
        exact = faiss.IndexFlatIP(dim)
        exact.add(base)
        start = time.perf_counter()
        _, truth = exact.search(queries, 10)
        exact_ms = (time.perf_counter() - start) * 1000 / len(queries)
        approximate = EmbeddingIndex(dim, "-", "-", kind="hnsw")
        start = time.perf_counter()
        approximate.index.add(base)
        build_s = time.perf_counter() - start
        for ef in args.ef:
            approximate.index.hnsw.efSearch = ef
            start = time.perf_counter()
            _, found = approximate.index.search(queries, 10)
            ms = (time.perf_counter() - start) * 1000 / len(queries)
            hits = [len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]
            record = {
                "benchmark": "hnsw_recall@10",
                "rows": args.rows,
                "dim": dim,
                "ef_search": ef,
                "recall@10": round(float(np.mean(hits)), 4),
                "query_ms": round(ms, 3),
                "exact_query_ms": round(exact_ms, 3),
                "build_s": round(build_s, 1),
                "threads": faiss.omp_get_max_threads(),
            }
            print(json.dumps(record), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    classes = commands.add_parser("class")
    classes.add_argument("--model", required=True)
    classes.add_argument("--data-dir", required=True)
    classes.add_argument("--datasets", nargs="+", default=["appearance", "motion", "images"])
    classes.add_argument("--limit", type=int, help="examples per split (default: all)")
    ann = commands.add_parser("ann")
    ann.add_argument("--rows", type=int, default=100_000)
    ann.add_argument("--dims", type=int, nargs="+", default=[96, 768])
    ann.add_argument("--queries", type=int, default=1000)
    ann.add_argument("--ef", type=int, nargs="+", default=[16, 64, 128, 256])
    args = parser.parse_args(argv)
    class_recall(args) if args.command == "class" else ann_recall(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
