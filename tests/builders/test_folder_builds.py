"""Building real-format Kinetics and video_folder trees that hold bad files: skip, keep, report."""

import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from cover_tf.builders import registry
from cover_tf.builders.video_builder import read_skip_report


def _add_bad_files(folder, data: bytes, names: dict[str, str]) -> None:
    """Writes the bad files `names` maps to a kind: zero, truncated, garbage (missing: none)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, kind in names.items():
        if kind == "zero":
            (folder / name).write_bytes(b"")
        elif kind == "truncated":
            (folder / name).write_bytes(data[: len(data) // 2])
        elif kind == "garbage":
            (folder / name).write_bytes(np.random.default_rng(1).bytes(3000))


def _prepare(name, manual_dir, data_dir, **kwargs):
    builder = registry.get_builder(name, data_dir=data_dir, short_side=24, fps=10.0, **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def _report(builder, split):
    return read_skip_report(f"{builder.data_dir}/skipped_{split}.jsonl")


@pytest.fixture()
def kinetics_root(tmp_path, real_clips):
    root = tmp_path / "kinetics"
    rows = {"train": [], "val": [], "test": []}
    good = [  # (split, label, youtube id, source clip, per-class folder?)
        ("train", "abseiling", "A0000000000", "bikes", True),
        ("train", "abseiling", "A0000000001", "carphone", True),
        ("train", "bowling", "B0000000000", "carphone", False),
        ("val", "bowling", "B0000000001", "bikes", False),
        ("test", "", "C0000000000", "carphone", False),
    ]
    for split, label, yid, source, per_class in good:
        folder = root / split / label if per_class else root / split
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(real_clips[source], folder / f"{yid}_000010_000020.mp4")
        rows[split].append(f"{label},{yid},10,20,{split}")
    bad = {
        "Z0000000000_000010_000020.mp4": "zero",
        "T0000000000_000010_000020.mp4": "truncated",
        "G0000000000_000010_000020.mp4": "garbage",
    }
    _add_bad_files(root / "train", real_clips["bikes"].read_bytes(), bad)
    for key in ("Z0000000000", "T0000000000", "G0000000000", "M0000000000"):  # M: missing
        rows["train"].append(f"bowling,{key},10,20,train")
    (root / "annotations").mkdir()
    for split, lines in rows.items():
        header = "label,youtube_id,time_start,time_end,split"
        (root / "annotations" / f"{split}.csv").write_text("\n".join([header, *lines]) + "\n")
    return root


def test_kinetics_build_skips_and_reports_bad_videos(kinetics_root, tmp_path):
    builder = _prepare("kinetics/400", kinetics_root, tmp_path / "tfds")
    assert builder.info.splits["train"].num_examples == 3
    assert builder.info.splits["validation"].num_examples == 1
    assert builder.info.splits["test"].num_examples == 1
    assert builder.info.features["label"].names == ["abseiling", "bowling"]
    report = {entry["key"][:11]: entry for entry in _report(builder, "train")}
    assert sorted(report) == ["G0000000000", "M0000000000", "T0000000000", "Z0000000000"]
    assert report["Z0000000000"]["reason"] == "zero-byte file"
    assert report["M0000000000"]["reason"] == "file not found"
    assert report["M0000000000"]["path"].endswith("train/M0000000000_000010_000020.mp4")
    assert _report(builder, "validation") == [] and _report(builder, "test") == []

    examples = list(
        builder.as_dataset(split="train", decoders={"video": tfds.decode.SkipDecoding()})
    )
    assert sorted(e["id"].numpy().decode() for e in examples) == sorted(
        f"{k}_000010_000020" for k in ("A0000000000", "A0000000001", "B0000000000")
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
    _add_bad_files(root / "train" / "phones", real_clips["bikes"].read_bytes(), bad)
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
