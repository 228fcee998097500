"""Video retrieval with an exported CoVeR model: index a folder, search it with a file.

    python -m cover_tf.retrieval index VIDEO_DIR --model EXPORT --out INDEX_DIR
        [--approximate] [--window SECONDS] [--json] [--verbose]
    python -m cover_tf.retrieval search QUERY_FILE --index INDEX_DIR [--top 10] [--json]
        [--model EXPORT] [--ef 128] [--verbose]

`index` embeds every video and image under VIDEO_DIR (recursively; a progress bar on a terminal)
with the export's `embedding` signature and writes INDEX_DIR. Run on an existing INDEX_DIR it adds
only the files the index does not hold yet, and refuses a model other than the one the index was
built with (a re-export of the same model is the same model). Runs into one INDEX_DIR at the same
time all keep their files (each save takes the folder's lock and adds to what it holds then).
Unreadable files are skipped and listed (exit status 1; the index holds the others); files that
are not videos or images are counted and listed with --json; names that are not UTF-8 are
indexed and printed with `\\xNN` for their bytes.

`search` embeds QUERY_FILE (a video or an image) with the index's model (or --model, which must be
the same model) and prints the nearest indexed files with their cosine similarity. The exact index
(faiss IndexFlatIP) is the default; --approximate builds an HNSW graph instead, for millions of
files (recall@10 vs exact: see benchmarks/retrieval_recall.py).

Errors (a missing folder or export, another model, a damaged or busy index, an unreadable query)
end with one line `retrieval: error: <sentence>` on stderr and exit status 2; `--verbose` adds
the traceback.
"""

import argparse
import json
import os
import pathlib
import sys

import numpy as np

from cover_tf import cli
from cover_tf.builders.examples import printable
from cover_tf.retrieval.embedding import FileEmbedder, UnreadableFileError, media_kind
from cover_tf.retrieval.index_store import EmbeddingIndex, add_to_folder

PROG = "retrieval"
SAVE_EVERY = 100  # new files embedded between saves (a crash loses at most this many)


def parse_args(argv=None) -> argparse.Namespace:
    def error(message):  # usage mistakes in the commands' one style
        sys.exit(cli.fail(PROG, cli.UserError(message)))

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    parser = argparse.ArgumentParser(prog="python -m cover_tf.retrieval", description=__doc__)
    parser.error = error
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser(
        "index", parents=[common], help="embed a folder's videos and images"
    )
    index.add_argument("folder", metavar="VIDEO_DIR")
    index.add_argument("--model", required=True, help="export folder (base or version)")
    index.add_argument("--out", required=True, metavar="INDEX_DIR")
    index.add_argument("--approximate", action="store_true", help="HNSW index (new index only)")
    index.add_argument("--window", type=float, help="seconds per video window (default: a clip)")
    index.add_argument("--json", action="store_true", help="the report as one JSON object")
    search = commands.add_parser(
        "search", parents=[common], help="the indexed files nearest to a query file"
    )
    search.add_argument("query", metavar="QUERY_FILE")
    search.add_argument("--index", required=True, metavar="INDEX_DIR")
    search.add_argument("--top", type=int, default=10)
    search.add_argument("--model", help="export to embed the query (default: the index's)")
    search.add_argument("--ef", type=int, default=128, help="HNSW search breadth (approximate)")
    search.add_argument("--json", action="store_true")
    index.error = search.error = error
    args = parser.parse_args(argv)
    if args.command == "search" and (args.top < 1 or args.ef < 1):
        error(f"--top and --ef must be >= 1, got {args.top} and {args.ef}")
    if args.command == "index" and args.window is not None and not args.window > 0:
        error(f"--window must be > 0 seconds, got {args.window}")
    return args


def list_files(folder: pathlib.Path) -> list[pathlib.Path]:
    """Every file under `folder`, sorted, hidden files and folders left out. Names that are not
    UTF-8 come as `os.listdir` gives them (surrogate escapes), which opening them takes back."""
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


def _check_model(embedder):
    """The model check of an index for `embedder`'s export (an old index: by its old hash)."""

    def check(index):
        index.check_model(embedder.fingerprint, embedder.path, lambda: embedder.legacy_fingerprint)

    return check


def build_index(args) -> int:
    folder = pathlib.Path(args.folder)
    if not folder.is_dir():
        raise cli.UserError(f"{args.folder!r} is not a folder")
    out = args.out  # a local folder or a tf.io.gfile URL (gs://...)
    embedder = FileEmbedder(args.model, window=args.window)
    check_model = _check_model(embedder)
    index = EmbeddingIndex.load(out) if EmbeddingIndex.exists(out) else None
    if index is not None:
        check_model(index)
        if args.approximate and index.kind != "hnsw":
            raise cli.UserError(
                f"the index at {str(out)!r} is {index.kind!r}; --approximate applies to new ones"
            )
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

    def new_index():
        kind = "hnsw" if args.approximate else "flat"
        return EmbeddingIndex(len(pending[0]), embedder.fingerprint, str(embedder.path), kind=kind)

    def flush():
        # Under the index's lock, onto what the folder holds now: another run's files stay, and
        # files it indexed meanwhile count as already indexed.
        nonlocal index
        if not pending:
            return
        index, added = add_to_folder(
            out, index, np.stack(pending), pending_items, new_index, check_model
        )
        report["added"] += added
        report["already_indexed"] += len(pending) - added
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
            f"{printable(out)}: added {report['added']} files ({report['total']} in the index, "
            f"{report['already_indexed']} already there), skipped {len(report['skipped'])} "
            f"unreadable, ignored {len(report['not_media'])} other files"
        )
        for skipped in report["skipped"]:
            print(f"  SKIPPED {printable(skipped['path'])}: {skipped['reason']}")
    return 1 if report["skipped"] else 0


def search_index(args) -> int:
    index = EmbeddingIndex.load(args.index)
    model = args.model or index.model
    embedder = FileEmbedder(model)
    _check_model(embedder)(index)
    try:
        _, vector = embedder.embed_file(pathlib.Path(args.query).resolve())
    except UnreadableFileError as error:
        message = f"cannot embed the query {printable(error.path)!r}: {error.reason}"
        raise cli.UserError(message) from error
    scores, found = index.search(vector[None], args.top, ef_search=args.ef)
    results = [
        {"rank": rank + 1, "path": item["path"], "kind": item["kind"], "similarity": float(score)}
        for rank, (score, item) in enumerate(zip(scores[0], found[0], strict=False))
    ]
    if args.json:
        print(json.dumps({"query": args.query, "index": args.index, "results": results}))
    else:
        for result in results:
            print(f"{result['rank']:3d}  {result['similarity']:.4f}  {printable(result['path'])}")
    return 0


@cli.command(PROG)
def main(argv=None) -> int:
    """`retrieval: error: <one sentence>` on stderr and exit 2 for every error (`cli.command`),
    the traceback only with --verbose; `index` exits 1 when it skipped unreadable files."""
    args = parse_args(argv)
    if args.command == "index":
        return build_index(args)
    else:
        return search_index(args)


if __name__ == "__main__":
    sys.exit(main())
