"""A split's examples generated on Apache Beam workers (`tfds build ... --beam_pipeline_options=`).

The same `encode(item)` callable as the one-process path runs in a `DoFn`; a file it rejects
(`SkipItem`) leaves the `DoFn` on a tagged output, not in a worker-local file, and one
`CombineGlobally` gathers those with the annotation rows the builder skipped and writes the
split's `skipped_<split>.jsonl` once. The items travel as a JSON-lines file next to the prepared
data (a shared filesystem, as the workers need for the output too), not inside the pipeline
graph, which runners limit in size (Dataflow: 10 MB, less than Kinetics-400's 240k items).

Workers import only `cover_tf.builders` (the encode callables live there, never in the path-loaded
builder modules), so a worker needs cover_tf installed, not the repository's `datasets/` folder.
This module imports apache_beam: import it only when Beam is used.
"""

import json
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
from etils import epath

from cover_tf.builders.examples import Item, SkipItem, skip_entry, write_skip_report

SKIPPED_TAG = "skipped"
ITEMS_PATTERN = "beam_items_{split}.jsonl"


def write_items(path, items: Iterable[Item]) -> None:
    """Writes items as JSON lines `[key, path, label]`, the input of `generate`."""
    lines = "".join(json.dumps([i.key, str(i.path), int(i.label)]) + "\n" for i in items)
    epath.Path(path).write_text(lines)


def read_items(path) -> list[Item]:
    """The items of a file `write_items` wrote."""
    text = epath.Path(path).read_text()
    return [Item(k, epath.Path(p), label) for k, p, label in map(json.loads, text.splitlines())]


class EncodeItems(beam.DoFn):
    """Encodes items; examples on the main output, rejected files on the `skipped` output.

    Args:
      encode: a picklable callable `Item -> example dict` raising `SkipItem` (defined in an
        importable module, since workers unpickle it by reference).
    """

    def __init__(self, encode: Callable[[Item], dict[str, Any]]):
        self.encode = encode
        self._kept = beam.metrics.Metrics.counter("cover_tf", "kept")
        self._skipped = beam.metrics.Metrics.counter("cover_tf", "skipped")

    def process(self, item: Item):
        try:
            example = self.encode(item)
        except SkipItem as error:
            self._skipped.inc()
            yield beam.pvalue.TaggedOutput(
                SKIPPED_TAG, skip_entry(item.key, item.path, error.reason)
            )
            return
        self._kept.inc()
        yield item.key, example


def _write_report(entries: list[dict[str, str]], path: str, split: str) -> None:
    write_skip_report(path, entries, split)


def generate(
    items: list[Item],
    encode: Callable[[Item], dict[str, Any]],
    *,
    items_path,
    report_path,
    split: str,
    skipped: Iterable[dict[str, str]] = (),
) -> beam.PTransform:
    """A PTransform (applied by TFDS to its pipeline) yielding the split's (key, example) pairs.

    Writes `items` to `items_path` now; the pipeline reads them there, encodes them on the
    workers and writes `report_path` with `skipped` and every file `encode` rejected.
    """
    write_items(items_path, items)
    items_path, report_path, skipped = str(items_path), str(report_path), list(skipped)

    @beam.ptransform_fn
    def _generate(pipeline):
        items_pc = (
            pipeline
            | "ItemsFile" >> beam.Create([items_path])
            | "ReadItems" >> beam.FlatMap(read_items)
            | "Spread" >> beam.Reshuffle()
        )
        results = items_pc | "Encode" >> beam.ParDo(EncodeItems(encode)).with_outputs(
            SKIPPED_TAG, main="examples"
        )
        before = pipeline | "SkippedBeforeEncoding" >> beam.Create(skipped)
        _ = (
            (before, results[SKIPPED_TAG])
            | "AllSkipped" >> beam.Flatten()
            | "CollectSkipped" >> beam.CombineGlobally(beam.combiners.ToListCombineFn())
            | "WriteReport" >> beam.Map(_write_report, path=report_path, split=split)
        )
        return results.examples

    return _generate()
