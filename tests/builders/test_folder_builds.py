"""Building real-format Kinetics and video_folder trees that hold bad files: skip, keep, report."""

import shutil

import pytest
import tensorflow_datasets as tfds

from cover_tf.builders import registry
from cover_tf.builders.video_builder import read_skip_report
from tests.builders.conftest import (
    KINETICS_GOOD,
    KINETICS_SKIPPED,
    add_bad_files,
    check_kinetics_report,
)


def _prepare(name, manual_dir, data_dir, **kwargs):
    builder = registry.get_builder(name, data_dir=data_dir, short_side=24, fps=10.0, **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def _report(builder, split):
    return read_skip_report(f"{builder.data_dir}/skipped_{split}.jsonl")


def test_kinetics_build_skips_and_reports_bad_videos_and_rows(kinetics_root, tmp_path):
    builder = _prepare("kinetics/400", kinetics_root, tmp_path / "tfds")
    for split, keys in KINETICS_GOOD.items():
        assert builder.info.splits[split].num_examples == len(keys)
    assert builder.info.features["label"].names == ["abseiling", "bowling"]
    check_kinetics_report({split: _report(builder, split) for split in KINETICS_SKIPPED})
    report = {entry["key"][:11]: entry for entry in _report(builder, "train")}
    assert report["M0000000000"]["path"].endswith("train/M0000000000_000010_000020.mp4")
    assert report["S0000000000"]["path"].endswith("annotations/train.csv")

    examples = list(
        builder.as_dataset(split="train", decoders={"video": tfds.decode.SkipDecoding()})
    )
    assert sorted(e["id"].numpy().decode() for e in examples) == sorted(
        f"{k}_000010_000020" for k in KINETICS_GOOD["train"]
    )
    first = examples[0]
    assert first["video"].dtype.name == "string"  # JPEG per frame, decoded by the reader
    assert first["fps"].numpy() == pytest.approx(10.0)
    test_example = next(iter(builder.as_dataset(split="test")))
    assert test_example["label"].numpy() == -1  # no label in test.csv
    assert test_example["video"].shape[1] == 24  # short side


def test_kinetics_missing_annotation_names_the_path(tmp_path):
    (tmp_path / "root" / "train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="annotations/train.csv"):
        _prepare("kinetics/600", tmp_path / "root", tmp_path / "tfds")


def test_video_folder_build_skips_and_reports_bad_videos(tmp_path, real_clips):
    root = tmp_path / "videos"
    for split, cls, source in [
        ("train", "bikes", "bikes"),
        ("train", "phones", "carphone"),
        ("validation", "phones", "carphone"),
    ]:
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(real_clips[source], root / split / cls / f"{source}.mp4")
    bad = {"zero.mp4": "zero", "truncated.mp4": "truncated", "garbage.avi": "garbage"}
    add_bad_files(root / "train" / "phones", real_clips["bikes"].read_bytes(), bad)
    builder = _prepare("video_folder", root, tmp_path / "tfds")
    assert builder.info.config_name == "default_fps10_short24"
    assert builder.info.splits["train"].num_examples == 2
    assert builder.info.splits["validation"].num_examples == 1
    assert builder.info.features["label"].names == ["bikes", "phones"]
    report = _report(builder, "train")
    assert sorted(entry["key"] for entry in report) == [
        "phones/garbage.avi",
        "phones/truncated.mp4",
        "phones/zero.mp4",
    ]
    assert all(entry["reason"] for entry in report)


def test_video_folder_without_train_names_the_path(tmp_path):
    (tmp_path / "videos" / "test" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="videos/train"):
        _prepare("video_folder", tmp_path / "videos", tmp_path / "tfds")


def test_video_folder_reports_stray_files_and_empty_classes(tmp_path, real_clips):
    root = tmp_path / "videos"
    for split, cls in [("train", "bikes"), ("validation", "bikes"), ("validation", "boats")]:
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(real_clips["bikes"], root / split / cls / "clip.mp4")
    (root / "train" / "bikes" / "notes.txt").write_text("not a video")
    (root / "train" / "bikes" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "train" / "bikes" / "more").mkdir()
    (root / "train" / "empty").mkdir()
    (root / "train" / "README.md").write_text("outside the class folders")
    builder = _prepare("video_folder", root, tmp_path / "tfds")
    assert builder.info.features["label"].names == ["bikes"]  # "empty" is not a class
    assert builder.info.splits["train"].num_examples == 1
    assert builder.info.splits["validation"].num_examples == 1
    reasons = {entry["key"]: entry["reason"] for entry in _report(builder, "train")}
    assert reasons == {
        "README.md": "not in a class folder (<split>/<class>/<file>)",
        "bikes/.DS_Store": "not a video file (suffix 'none')",
        "bikes/more": "a folder inside a class folder (not searched)",
        "bikes/notes.txt": "not a video file (suffix '.txt')",
        "empty/": "empty class folder (no video files): not made a class",
    }
    validation = _report(builder, "validation")
    assert [(e["key"], e["reason"]) for e in validation] == [
        ("boats/clip.mp4", "class folder 'boats' is not one of the train classes")
    ]
