"""Preparing through Apache Beam gives the examples and skipped-file reports of the local build."""

import re

import pytest
import tensorflow_datasets as tfds
from etils import epath

from cover_tf.builders import registry
from cover_tf.builders.examples import read_skip_report
from tests.builders.conftest import KINETICS_GOOD, add_bad_files, check_kinetics_report

beam = pytest.importorskip("apache_beam")  # pinned in setup.cfg; the import takes ~2 s


def fn_api_runner():
    """Beam's portable in-process runner: what DirectRunner runs after trying Prism, which it
    would download from GitHub first (offline: ~10 s lost per pipeline)."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def prepare(name, manual_dir, data_dir, *, beam_runner=None, **kwargs):
    builder = registry.get_builder(name, data_dir=data_dir, **kwargs)
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir), beam_runner=beam_runner)
    builder.download_and_prepare(download_config=config)
    return builder


def stored_examples(builder, split, frames_key="video"):
    """{id: (label, stored bytes)} of a prepared split, the frames' JPEG bytes undecoded."""
    dataset = builder.as_dataset(split=split, decoders={frames_key: tfds.decode.SkipDecoding()})
    examples = {}
    for example in dataset:
        frames = example[frames_key].numpy()
        frames = frames.tolist() if hasattr(frames, "tolist") else frames
        examples[example["id"].numpy().decode()] = (int(example["label"]), frames)
    return examples


def reports(builder):
    return {
        split: read_skip_report(epath.Path(builder.data_dir) / f"skipped_{split}.jsonl")
        for split in builder.info.splits
    }


def test_kinetics_beam_build_equals_local_build(kinetics_root, tmp_path):
    kwargs = dict(short_side=24, fps=10.0)
    local = prepare("kinetics/400", kinetics_root, tmp_path / "local", **kwargs)
    beamed = prepare(
        "kinetics/400", kinetics_root, tmp_path / "beam", beam_runner=fn_api_runner(), **kwargs
    )
    assert beamed.info.features["label"].names == local.info.features["label"].names
    for split, keys in KINETICS_GOOD.items():
        examples = stored_examples(beamed, split)
        assert sorted(examples) == sorted(f"{key}_000010_000020" for key in keys)
        assert examples == stored_examples(local, split)  # same labels, same JPEG bytes
    assert reports(beamed) == reports(local)
    check_kinetics_report(reports(beamed))
    leftovers = [p.name for p in epath.Path(beamed.data_dir).iterdir() if "items" in p.name]
    assert leftovers == []


def test_image_folder_beam_build_equals_local_build(tmp_path, real_clips):
    import PIL.Image
    import skimage.data

    root = tmp_path / "images"
    for split, cls, name in [("train", "cat", "chelsea"), ("train", "coffee", "coffee")]:
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(getattr(skimage.data, name)()).save(root / split / cls / f"{name}.jpg")
    add_bad_files(root / "train" / "cat", b"", {"broken.jpg": "garbage"})
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    local = prepare("image_folder", root, tmp_path / "local")
    beamed = prepare("image_folder", root, tmp_path / "beam", beam_runner=fn_api_runner())
    assert stored_examples(beamed, "train", "image") == stored_examples(local, "train", "image")
    assert sorted(stored_examples(beamed, "train", "image")) == [
        "cat/chelsea.jpg",
        "coffee/coffee.jpg",
    ]
    assert reports(beamed) == reports(local)
    assert [e["key"] for e in reports(beamed)["train"]] == ["cat/broken.jpg", "cat/notes.txt"]


@pytest.mark.parametrize("beam_runner", [None, "fn_api"], ids=["local", "beam"])
def test_wrong_manual_dir_and_missing_annotations_name_the_path(tmp_path, beam_runner):
    runner = fn_api_runner() if beam_runner else None
    # TFDS checks manual_dir first (an AssertionError naming it), ManualDataBuilder second.
    missing = re.escape(str(tmp_path / "nowhere"))
    with pytest.raises((AssertionError, FileNotFoundError), match=f"{missing}.? does not exist"):
        prepare("kinetics/400", tmp_path / "nowhere", tmp_path / "tfds", beam_runner=runner)
    (tmp_path / "root" / "annotations").mkdir(parents=True)
    (tmp_path / "root" / "annotations" / "train.csv").write_text("label,youtube_id\n")
    with pytest.raises(FileNotFoundError, match="annotations/val.csv"):
        prepare("kinetics/400", tmp_path / "root", tmp_path / "tfds", beam_runner=runner)
