"""Video retrieval with an exported CoVeR model: index a folder, search it with a file.

    python -m cover_tf.retrieval index VIDEO_DIR --model EXPORT --out INDEX_DIR
        [--approximate] [--window SECONDS] [--json]
    python -m cover_tf.retrieval search QUERY_FILE --index INDEX_DIR [--top 10] [--json]
        [--model EXPORT] [--ef 128]

`index` embeds every video and image under VIDEO_DIR (recursively; a progress bar on a terminal)
with the export's `embedding` signature and writes INDEX_DIR. Run on an existing INDEX_DIR it adds
only the files the index does not hold yet, and refuses a model other than the one the index was
built with. Unreadable files are skipped and listed (exit status 1; the index holds the others);
files that are not videos or images are counted and listed with --json.

`search` embeds QUERY_FILE (a video or an image) with the index's model (or --model, which must be
the same model) and prints the nearest indexed files with their cosine similarity. The exact index
(faiss IndexFlatIP) is the default; --approximate builds an HNSW graph instead, for millions of
files (recall@10 vs exact: see benchmarks/retrieval_recall.py).
"""

import argparse
import json
import os
import pathlib
import sys

import numpy as np

from cover_tf.retrieval.embedding import FileEmbedder, UnreadableFileError, media_kind
from cover_tf.retrieval.index_store import EmbeddingIndex, IndexFolderError

SAVE_EVERY = 100  # new files embedded between saves (a crash loses at most this many)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cover_tf.retrieval", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser("index", help="embed a folder's videos and images")
    index.add_argument("folder", metavar="VIDEO_DIR")
    index.add_argument("--model", required=True, help="export folder (base or version)")
    index.add_argument("--out", required=True, metavar="INDEX_DIR")
    index.add_argument("--approximate", action="store_true", help="HNSW index (new index only)")
    index.add_argument("--window", type=float, help="seconds per video window (default: a clip)")
    index.add_argument("--json", action="store_true", help="the report as one JSON object")
    search = commands.add_parser("search", help="the indexed files nearest to a query file")
    search.add_argument("query", metavar="QUERY_FILE")
    search.add_argument("--index", required=True, metavar="INDEX_DIR")
    search.add_argument("--top", type=int, default=10)
    search.add_argument("--model", help="export to embed the query (default: the index's)")
    search.add_argument("--ef", type=int, default=128, help="HNSW search breadth (approximate)")
    search.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "search" and (args.top < 1 or args.ef < 1):
        parser.error(f"--top and --ef must be >= 1, got {args.top} and {args.ef}")
    if args.command == "index" and args.window is not None and not args.window > 0:
        parser.error(f"--window must be > 0 seconds, got {args.window}")
    return args


def list_files(folder: pathlib.Path) -> list[pathlib.Path]:
    """Every file under `folder`, sorted, hidden files and folders left out."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        files += [pathlib.Path(root) / n for n in sorted(names) if not n.startswith(".")]
    return files


def progress_bar(total: int):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="file", file=sys.stderr, leave=False)


def build_index(args) -> int:
    folder = pathlib.Path(args.folder)
    if not folder.is_dir():
        print(f"{args.folder!r} is not a folder")
        return 2
    out = args.out  # a local folder or a tf.io.gfile URL (gs://...)
    embedder = FileEmbedder(args.model, window=args.window)
    if EmbeddingIndex.exists(out):
        index = EmbeddingIndex.load(out)
        index.check_model(embedder.fingerprint, embedder.path)
        if args.approximate and index.kind != "hnsw":
            print(f"the index at {str(out)!r} is {index.kind!r}; --approximate applies to new ones")
            return 2
    else:
        index = None
    files = [path.resolve() for path in list_files(folder)]
    known = index.paths() if index is not None else set()
    media = [p for p in files if media_kind(p) is not None and str(p) not in known]
    report = {
        "index": str(out),
        "model": str(embedder.path),
        "added": 0,
        "already_indexed": sum(str(p) in known for p in files),
        "skipped": [],
        "not_media": [str(p) for p in files if media_kind(p) is None],
    }
    bar = progress_bar(len(media))
    pending, pending_items = [], []

    def flush():
        nonlocal index
        if not pending:
            return
        if index is None:
            kind = "hnsw" if args.approximate else "flat"
            dim = len(pending[0])
            index = EmbeddingIndex(dim, embedder.fingerprint, str(embedder.path), kind=kind)
        index.add(np.stack(pending), pending_items)
        index.save(out)
        pending.clear()
        pending_items.clear()

    for path in media:
        try:
            kind, vector = embedder.embed_file(path)
        except UnreadableFileError as error:
            report["skipped"].append({"path": str(path), "reason": error.reason})
        else:
            stat = path.stat()
            pending.append(vector)
            pending_items.append(
                {"path": str(path), "kind": kind, "bytes": stat.st_size, "mtime": stat.st_mtime}
            )
            report["added"] += 1
            if len(pending) >= SAVE_EVERY:
                flush()
        if bar is not None:
            bar.update(1)
    flush()
    if bar is not None:
        bar.close()
    report["total"] = len(index) if index is not None else 0
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{str(out)}: added {report['added']} files ({report['total']} in the index, "
            f"{report['already_indexed']} already there), skipped {len(report['skipped'])} "
            f"unreadable, ignored {len(report['not_media'])} other files"
        )
        for skipped in report["skipped"]:
            print(f"  SKIPPED {skipped['path']}: {skipped['reason']}")
    return 1 if report["skipped"] else 0


def search_index(args) -> int:
    index = EmbeddingIndex.load(args.index)
    model = args.model or index.model
    embedder = FileEmbedder(model)
    index.check_model(embedder.fingerprint, embedder.path)
    try:
        _, vector = embedder.embed_file(pathlib.Path(args.query).resolve())
    except UnreadableFileError as error:
        print(str(error))
        return 2
    scores, found = index.search(vector[None], args.top, ef_search=args.ef)
    results = [
        {"rank": rank + 1, "path": item["path"], "kind": item["kind"], "similarity": float(score)}
        for rank, (score, item) in enumerate(zip(scores[0], found[0], strict=False))
    ]
    if args.json:
        print(json.dumps({"query": args.query, "index": args.index, "results": results}))
    else:
        for result in results:
            print(f"{result['rank']:3d}  {result['similarity']:.4f}  {result['path']}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "index":
            return build_index(args)
        else:
            return search_index(args)
    except (IndexFolderError, FileNotFoundError, ValueError) as error:
        print(str(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())
