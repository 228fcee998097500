"""Finding builders by name: project builders by path, TFDS's own ones, unknown names."""

import pytest
import tensorflow_datasets as tfds

from cover_tf.builders import registry


def test_project_builders_by_name_and_config(tmp_path):
    kinetics = registry.get_builder("kinetics/400", data_dir=tmp_path)
    assert kinetics.name == "kinetics" and kinetics.builder_config.name == "400"
    assert kinetics.builder_config.short_side == 256
    motion = registry.get_builder("cover_synthetic/motion", data_dir=tmp_path)
    assert motion.builder_config.task == "motion"
    assert motion.info.features["label"].num_classes == 8
    # Registered with TFDS once imported, so tfds.builder finds it too.
    assert "cover_synthetic" in tfds.list_builders(with_community_datasets=False)
    assert type(tfds.builder("cover_synthetic/images", data_dir=tmp_path)) is type(motion)


def test_config_overrides_rename_the_config(tmp_path):
    builder = registry.get_builder("kinetics/700", data_dir=tmp_path, short_side=128, fps=8.0)
    assert builder.builder_config.name == "700_fps8_short128"
    assert (builder.builder_config.short_side, builder.builder_config.fps) == (128, 8.0)


def test_registered_tfds_builder_is_returned_as_is(tmp_path):
    builder = registry.get_builder("imagenet2012", data_dir=tmp_path)
    assert builder.name == "imagenet2012"
    assert set(builder.info.features) >= {"image", "label", "file_name"}


def test_builder_dir_and_module_are_found_by_path():
    assert registry.builder_dir("kinetics/400").name == "kinetics"
    module = registry.load_builder_module("video_folder")
    assert module is registry.load_builder_module("video_folder")  # imported once
    assert {"cover_synthetic", "kinetics", "video_folder"} <= set(registry.available_builders())


def test_unknown_name_error_names_the_searched_path(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_dataset_dataset_builder.py"):
        registry.get_builder("no_such_dataset/x")
    monkeypatch.setenv(registry.DATASETS_DIR_ENV, str(tmp_path))
    assert registry.datasets_dir() == tmp_path.resolve()
    with pytest.raises(FileNotFoundError, match=str(tmp_path.resolve())):
        registry.builder_dir("kinetics")
