"""One example per file, bad files skipped and reported: the part every project builder shares.

A builder lists `Item`s (key, path, label) and gives an `encode(item) -> example` callable that
raises `SkipItem(reason)` for a file it cannot use. `generate_examples` runs it on a thread pool
(one process); `beam_examples` runs the same callable on Apache Beam workers. Either way every
skipped file, and every annotation row a builder could not use, is listed once in
`<data_dir>/skipped_<split>.jsonl`: one JSON object per line, `{"key", "path", "reason"}`,
sorted by key (an empty file: nothing skipped).
"""

import collections
import concurrent.futures
import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from absl import logging
from etils import epath

SKIPPED_REPORT_PATTERN = "skipped_{split}.jsonl"


class Item(NamedTuple):
    """One file to store: `key` (unique, the example's "id"), `path`, `label` (index, -1: none)."""

    key: str
    path: epath.Path
    label: int


class SkipItem(Exception):
    """Raised by an encode callable for a file it cannot turn into an example.

    Args:
      reason: what is wrong with the file, in words ("zero-byte file", "truncated: ...").
    """

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def printable(name) -> str:
    """A file name or path as text that prints and encodes anywhere: the bytes of a name that is
    not UTF-8 (which `os.listdir` returns as surrogate escapes, and `open` and PyAV take back as
    they are) shown as `\\xNN`, e.g. `clip\\xff.mp4`."""
    name = os.fsdecode(name) if isinstance(name, bytes) else os.fspath(name)
    try:
        data = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no file name decodes to
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return data.decode("utf-8", "backslashreplace")


def skip_entry(key: str, path, reason: str) -> dict[str, str]:
    """One line of a skipped-file report (key and path in their printable form)."""
    return {"key": printable(str(key)), "path": printable(path), "reason": str(reason)}


class SkipLog:
    """What a builder skipped while reading annotations and folders, per split.

    `add(split, key, path, reason)` logs a warning and records the entry; `entries(split)` are
    written into that split's report with the files skipped at encoding time.
    """

    def __init__(self):
        self._entries: dict[str, list[dict[str, str]]] = collections.defaultdict(list)

    def add(self, split: str, key: str, path, reason: str) -> None:
        logging.warning("Split %s: skipping %s (%s): %s", split, key, path, reason)
        self._entries[split].append(skip_entry(key, path, reason))

    def entries(self, split: str) -> list[dict[str, str]]:
        return list(self._entries.get(split, []))

    def splits(self) -> list[str]:
        return sorted(self._entries)


def write_skip_report(path, entries: Iterable[dict[str, str]], split: str = "") -> int:
    """Writes `entries` (sorted by key, then path) as JSON lines to `path`; returns their count."""
    entries = sorted(entries, key=lambda e: (e["key"], e["path"], e["reason"]))
    path = epath.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    logging.info("Split %s: %d skipped; report: %s", split, len(entries), path)
    return len(entries)


def read_skip_report(path) -> list[dict[str, str]]:
    """The entries of a `skipped_<split>.jsonl` report."""
    text = epath.Path(path).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def unique_items(items: Iterable[Item], skipped: list[dict[str, str]]) -> list[Item]:
    """`items` sorted by key; a repeated key keeps its first item, the others go to `skipped`."""
    unique: dict[str, Item] = {}
    for item in items:
        if item.key in unique:  # A repeated annotation row or file name.
            first = unique[item.key].path
            skipped.append(skip_entry(item.key, item.path, f"duplicate key (first: {first})"))
        else:
            unique[item.key] = item
    return [unique[key] for key in sorted(unique)]


def generate_examples(
    items: list[Item],
    encode: Callable[[Item], dict[str, Any]],
    *,
    report_path,
    split: str,
    skipped: Iterable[dict[str, str]] = (),
    num_workers: int | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yields (key, example) in key order; writes the split's report when the items are done.

    `items` must have unique keys (see `unique_items`); `skipped` are entries found before
    encoding (annotation rows, stray files), reported with the files `encode` rejects.
    Encoding runs on `num_workers` threads (PyAV, OpenCV and PIL release the GIL; default:
    min(4, CPU count)), at most 2 * num_workers items ahead of the consumer.
    """
    skipped = list(skipped)
    num_workers = num_workers or min(4, os.cpu_count() or 1)
    window = 2 * num_workers
    kept = 0
    with concurrent.futures.ThreadPoolExecutor(num_workers) as pool:
        futures = [pool.submit(encode, item) for item in items[:window]]
        for index, item in enumerate(items):
            if index + window < len(items):
                futures.append(pool.submit(encode, items[index + window]))
            try:
                example = futures[index].result()
            except SkipItem as error:
                logging.warning("Skipping %s (%s): %s", item.key, item.path, error.reason)
                skipped.append(skip_entry(item.key, item.path, error.reason))
                continue
            finally:
                futures[index] = None  # Free the frames.
            kept += 1
            yield item.key, example
    logging.info("Split %s: kept %d", split, kept)
    write_skip_report(report_path, skipped, split)
