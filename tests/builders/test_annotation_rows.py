"""Malformed annotation rows of SSv2 and Moments in Time: skipped and reported, never fatal."""

import json
import shutil

from tests.builders.test_folder_builds import _prepare, _report


def test_ssv2_entries_missing_fields_are_reported(tmp_path, real_clips):
    root = tmp_path / "ssv2"
    root.mkdir()
    labels = {"Pushing something from left to right": "0", "Holding something": "1"}
    (root / "labels.json").write_text(json.dumps(labels))
    for video_id in ("1", "2", "3"):
        shutil.copy(real_clips["bikes"], root / f"{video_id}.webm")  # PyAV reads by content
    train = [
        {"id": "1", "template": "Pushing [something] from left to right"},
        {"id": "2", "template": "Holding [something]"},
        {"template": "Holding [something]"},  # no id
        {"id": "4"},  # no template
        {"id": "5", "template": "Juggling [something]"},  # not in labels.json
        "not an entry",
    ]
    (root / "train.json").write_text(json.dumps(train))
    validation = [{"id": "3", "template": "Holding [something]"}, {"id": "6", "label": "x"}]
    (root / "validation.json").write_text(json.dumps(validation))
    builder = _prepare("something_something_v2", root, tmp_path / "tfds")
    assert builder.info.splits["train"].num_examples == 2
    assert builder.info.splits["validation"].num_examples == 1
    reasons = {entry["key"]: entry["reason"] for entry in _report(builder, "train")}
    assert reasons == {
        "entry 2": "entry 2: no 'id' in {'template': 'Holding [something]'}",
        "4": "entry 3: no 'template' in a train entry",
        "5": "entry 4: class 'Juggling something' is not in labels.json",
        "entry 5": "entry 5: no 'id' in 'not an entry'",
    }
    assert [e["key"] for e in _report(builder, "validation")] == ["6"]


def test_moments_in_time_malformed_rows_are_reported(tmp_path, real_clips):
    root = tmp_path / "mit"
    (root / "training" / "juggling").mkdir(parents=True)
    (root / "validation" / "juggling").mkdir(parents=True)
    shutil.copy(real_clips["bikes"], root / "training" / "juggling" / "a.mp4")
    shutil.copy(real_clips["carphone"], root / "validation" / "juggling" / "b.mp4")
    (root / "moments_categories.txt").write_text("juggling,0\nrunning,1\n")
    (root / "trainingSet.csv").write_text(
        "juggling/a.mp4,juggling,3,3\njuggling/c.mp4\n,juggling\nflying/d.mp4,flying,1,1\n"
    )
    (root / "validationSet.csv").write_text("juggling/b.mp4,juggling\nswimming/e.mp4,swimming\n")
    builder = _prepare("moments_in_time", root, tmp_path / "tfds")
    assert builder.info.splits["train"].num_examples == 1
    assert builder.info.splits["validation"].num_examples == 1
    reasons = {entry["key"]: entry["reason"] for entry in _report(builder, "train")}
    assert reasons == {
        "trainingSet.csv:2": "line 2: malformed row ['juggling/c.mp4']",
        "trainingSet.csv:3": "line 3: malformed row ['', 'juggling']",
        "flying/d": "line 4: label 'flying' is not a category",
    }
    validation = _report(builder, "validation")
    assert [(e["key"], e["reason"]) for e in validation] == [
        ("swimming/e", "line 2: label 'swimming' is not a category")
    ]
