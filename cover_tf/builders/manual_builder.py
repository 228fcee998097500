"""The base of the project's file builders: a manual download in, one example per file out.

A subclass lists the files (`_split_items`) and gives the callable that encodes one
(`_example_encoder`); this base checks manual_dir, sets the class names, drops repeated keys and
generates each split in one process (threads) or, when TFDS is given Beam options or a runner
(`tfds build ... --beam_pipeline_options=...`), on Apache Beam workers. Both paths produce the same
examples and the same `skipped_<split>.jsonl` (see `examples`).
"""

import os
from collections.abc import Callable
from typing import Any

import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from cover_tf.builders.examples import (
    SKIPPED_REPORT_PATTERN,
    Item,
    SkipLog,
    generate_examples,
    unique_items,
    write_skip_report,
)


class ManualDataBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the builders over a manual download: one example per file, bad files reported.

    Subclasses set TFDS's `VERSION`, `RELEASE_NOTES`, `BUILDER_CONFIGS`,
    `MANUAL_DOWNLOAD_INSTRUCTIONS` and `_info` (with a "label" ClassLabel feature), and implement
    `_split_items(manual_dir, skipped)` returning `(class_names, {split: [Item]})` (annotation
    rows or files they cannot use go to `skipped.add(split, key, path, reason)`) and
    `_example_encoder()` returning a picklable callable `Item -> example` that raises
    `SkipItem` for a bad file.
    """

    def _split_items(
        self, manual_dir: epath.Path, skipped: SkipLog
    ) -> tuple[list[str], dict[str, list[Item]]]:
        raise NotImplementedError

    def _example_encoder(self) -> Callable[[Item], dict[str, Any]]:
        raise NotImplementedError

    def _download_and_prepare(self, dl_manager, download_config):
        self._use_beam = (
            download_config.beam_runner is not None or download_config.beam_options is not None
        )
        super()._download_and_prepare(dl_manager, download_config)

    def _report_path(self, split: str) -> epath.Path:
        return epath.Path(self.data_dir) / SKIPPED_REPORT_PATTERN.format(split=split)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = epath.Path(dl_manager.manual_dir)
        if not manual_dir.is_dir():
            what = "is not a directory" if manual_dir.exists() else "does not exist"
            raise FileNotFoundError(
                f"{self.name}: manual_dir {os.fspath(manual_dir)!r} {what}. Expected layout:\n"
                f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        skipped = SkipLog()
        class_names, splits = self._split_items(manual_dir, skipped)
        if not class_names:
            raise ValueError(f"{self.name}: no classes found in {os.fspath(manual_dir)!r}")
        self.info.features["label"].names = list(class_names)
        generators = {}
        for split in sorted(set(splits) | set(skipped.splits())):
            entries = skipped.entries(split)
            items = unique_items(splits.get(split, []), entries)
            if not items:
                logging.warning("%s: split %s has nothing to build; not built", self.name, split)
                write_skip_report(self._report_path(split), entries, split)
                continue
            generators[split] = self._generate_examples(items, split, entries)
        return generators

    def _generate_examples(self, items: list[Item], split: str, skipped: list[dict[str, str]]):
        encode = self._example_encoder()
        if getattr(self, "_use_beam", False):
            from cover_tf.builders import beam_examples  # Imports apache_beam.

            items_path = epath.Path(self.data_dir) / beam_examples.ITEMS_PATTERN.format(split=split)
            return beam_examples.generate(
                items,
                encode,
                items_path=items_path,
                report_path=self._report_path(split),
                split=split,
                skipped=skipped,
            )
        return generate_examples(
            items, encode, report_path=self._report_path(split), split=split, skipped=skipped
        )

    def _process_pipeline_result(self, pipeline_result):
        from cover_tf.builders import beam_examples

        for path in epath.Path(self.data_dir).glob(beam_examples.ITEMS_PATTERN.format(split="*")):
            path.unlink()
        return super()._process_pipeline_result(pipeline_result)


def require_file(path, what: str) -> epath.Path:
    """`path` as an epath.Path; FileNotFoundError naming the expected path when it is missing."""
    path = epath.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: expected {os.fspath(path)!r}")
    return path
