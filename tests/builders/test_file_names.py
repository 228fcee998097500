"""Any file name builds: a video_folder holding names that are not UTF-8, built as a user builds it
(`python -m cover_tf.builders.build`), keeps every good video and names the odd ones printably.

Before, one such name ended the build with `error: 'utf-8' codec can't decode byte 0xff` and
nothing was built.
"""

import os
import shutil
import subprocess
import sys

import tensorflow_datasets as tfds

from cover_tf.builders import registry
from cover_tf.builders.examples import printable, read_skip_report
from tests.serving.conftest import REPO


def test_a_video_folder_with_names_that_are_not_utf8_builds_every_good_file(tmp_path, real_clips):
    root = tmp_path / "videos"
    good = {  # (split, class folder, file name) as bytes on disk
        ("train", b"bikes", b"bikes.mp4"),
        ("train", b"bikes", b"bikes \xff.mp4"),
        ("train", b"caf\xe9", b"phone.mp4"),
        ("train", b"caf\xe9", b"ph\xf6ne.mp4"),
        ("validation", b"bikes", b"r\xe9sum\xe9.mp4"),
    }
    for split, folder, name in good:
        target = os.path.join(os.fsencode(root), split.encode(), folder)
        os.makedirs(target, exist_ok=True)
        source = real_clips["bikes" if folder == b"bikes" else "carphone"]
        shutil.copy(source, os.path.join(target, name))
    bad = os.path.join(os.fsencode(root), b"train", b"bikes", b"empty\xfe.mp4")
    open(bad, "wb").close()
    notes = os.path.join(os.fsencode(root), b"train", b"bikes", b"notes\xff.txt")
    with open(notes, "w") as file:
        file.write("not a video")
    data_dir = tmp_path / "tfds"
    result = subprocess.run(
        [sys.executable, "-m", "cover_tf.builders.build", "video_folder"]
        + ["--manual_dir", str(root), "--data_dir", str(data_dir), "--short_side", "24"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    builder = registry.get_builder("video_folder", data_dir=data_dir, short_side=24)
    assert builder.info.features["label"].names == ["bikes", "caf\\xe9"]
    ids = {
        split: sorted(
            e["id"].numpy().decode()
            for e in builder.as_dataset(split=split, decoders={"video": tfds.decode.SkipDecoding()})
        )
        for split in ("train", "validation")
    }
    assert ids == {
        "train": [
            "bikes/bikes \\xff.mp4",
            "bikes/bikes.mp4",
            "caf\\xe9/ph\\xf6ne.mp4",
            "caf\\xe9/phone.mp4",
        ],
        "validation": ["bikes/r\\xe9sum\\xe9.mp4"],
    }
    report = read_skip_report(f"{builder.data_dir}/skipped_train.jsonl")
    assert [(entry["key"], entry["reason"]) for entry in report] == [
        ("bikes/empty\\xfe.mp4", "zero-byte file"),
        ("bikes/notes\\xff.txt", "not a video file (suffix '.txt')"),
    ]
    assert report[0]["path"] == printable(os.fsdecode(bad))
    assert "keeping bikes/bikes \\xff.mp4 (a name that is not UTF-8, printed)" in result.stderr
