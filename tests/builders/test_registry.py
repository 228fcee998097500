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


def test_unknown_name_error_lists_the_valid_builders(monkeypatch, tmp_path):
    with pytest.raises(registry.UnknownBuilderError) as error:
        registry.get_builder("no_such_dataset/x", data_dir=tmp_path)
    message = str(error.value)
    assert "'no_such_dataset'" in message and "kinetics, moments_in_time" in message
    assert "\n" not in message
    assert isinstance(error.value, ValueError) and isinstance(error.value, FileNotFoundError)
    assert list(tmp_path.iterdir()) == []  # Nothing written.
    monkeypatch.setenv(registry.DATASETS_DIR_ENV, str(tmp_path))
    assert registry.datasets_dir() == tmp_path.resolve()
    with pytest.raises(registry.UnknownBuilderError, match=str(tmp_path.resolve())):
        registry.builder_dir("kinetics")


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "kinetics/500",
            "Unknown config '500' of dataset builder 'kinetics': valid configs: 400, 600, 700.",
        ),
        (
            "kinetics/400:9.9.9",
            "Unknown version '9.9.9' of dataset builder 'kinetics': valid versions: 1.0.0.",
        ),
        (
            "imagenet2012/foo",
            "Unknown config 'foo' of dataset builder 'imagenet2012': it has no configs.",
        ),
    ],
)
def test_unknown_config_or_version_is_one_sentence_before_any_builder(name, expected, tmp_path):
    with pytest.raises(registry.UnknownBuilderError) as error:
        registry.check_builder(name)
    assert str(error.value) == expected
    with pytest.raises(registry.UnknownBuilderError):
        registry.get_builder(name, data_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_check_builder_returns_the_class_of_valid_names():
    assert registry.check_builder("kinetics/700").name == "kinetics"
    version = registry.check_builder("cover_synthetic").VERSION
    assert registry.check_builder(f"cover_synthetic/motion:{version}").name == "cover_synthetic"
    # A config with its own version: cover_synthetic's 2.2.0 pixels are a config of 2.3.0's builder.
    assert registry.check_builder("cover_synthetic/motion_2_2:2.2.0").name == "cover_synthetic"
    with pytest.raises(registry.UnknownBuilderError, match="valid versions: 2.3.0"):
        registry.check_builder("cover_synthetic/motion:2.2.0")
    assert registry.check_builder("imagenet2012").name == "imagenet2012"


def test_build_cli_unknown_config_is_one_line_and_exit_code_2(capsys, tmp_path):
    from cover_tf.builders import build

    assert build.main(["kinetics/500", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "build: error: Unknown config '500' of dataset builder 'kinetics': valid configs: "
        "400, 600, 700.\n"
    )
    assert list(tmp_path.iterdir()) == []
