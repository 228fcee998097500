"""Verified backups: a damaged latest backup falls back to the one before, never to scratch."""

import json
import logging

import numpy as np
import pytest

from cover_tf.config import OptimizerConfig
from cover_tf.models import build_cover_model
from cover_tf.training import backup, compile_model

SMALL = dict(hidden_size=32, num_layers=1, num_heads=2, patch_size=8, image_size=32)


def tiny_model(seed):
    model = build_cover_model({"motion": 4}, num_frames=2, **SMALL)
    compile_model(model, OptimizerConfig(), total_steps=10)
    model.optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(size=variable.shape).astype("float32"))
    return model


def write_backups(backup_dir, epochs):
    """A model saved after each of `epochs`; {epoch: first weight values at that epoch}."""
    model, values = tiny_model(0), {}
    callback = backup.AtomicBackup(backup_dir)
    callback.set_model(model)
    for epoch in range(epochs):
        model.trainable_variables[0].assign_add(np.ones(model.trainable_variables[0].shape))
        callback.on_epoch_end(epoch)
        values[epoch + 1] = model.trainable_variables[0].numpy().copy()
    return values


def restored(backup_dir):
    model = tiny_model(1)
    epoch = backup.restore(model, str(backup_dir))
    return epoch, model.trainable_variables[0].numpy()


def test_backups_are_verified_and_only_the_last_two_kept(tmp_path):
    values = write_backups(tmp_path, 3)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epoch"] == 3 and state["previous"]["epoch"] == 2
    weights = tmp_path / state["weights"]
    assert state["size"] == weights.stat().st_size and len(state["sha256"]) == 64
    assert sorted(p.name for p in tmp_path.glob("*.weights.h5")) == [
        "epoch_00002.weights.h5",
        "epoch_00003.weights.h5",
    ]
    epoch, first = restored(tmp_path)
    assert epoch == 3
    np.testing.assert_array_equal(first, values[3])


def _truncate(path):
    weights = path / "epoch_00002.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return "epoch_00002.weights.h5"


def _flip_a_byte(path):
    weights = path / "epoch_00002.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    return "sha256"


def _missing_file(path):
    (path / "epoch_00002.weights.h5").unlink()
    return "epoch_00002.weights.h5 is missing"


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte, _missing_file])
def test_a_damaged_latest_backup_falls_back_to_the_previous(tmp_path, caplog, damage):
    values = write_backups(tmp_path, 2)
    named = damage(tmp_path)
    caplog.set_level(logging.WARNING, logger="absl")
    epoch, first = restored(tmp_path)
    assert epoch == 1
    np.testing.assert_array_equal(first, values[1])
    assert "Damaged backup" in caplog.text and named in caplog.text


@pytest.mark.parametrize("pointer", ["garbage{", "", "{}", '{"epoch": 2, "weights": "x.h5"}'])
def test_a_damaged_pointer_uses_the_newest_verified_record(tmp_path, caplog, pointer):
    values = write_backups(tmp_path, 2)
    (tmp_path / "state.json").write_text(pointer)
    caplog.set_level(logging.WARNING, logger="absl")
    epoch, first = restored(tmp_path)
    assert epoch == (1 if "x.h5" in pointer else 2)  # x.h5 is missing: the one before
    np.testing.assert_array_equal(first, values[epoch])
    assert "state.json" in caplog.text or "x.h5 is missing" in caplog.text


def test_no_usable_backup_stops_with_a_sentence_naming_restart(tmp_path):
    write_backups(tmp_path, 2)
    for weights in tmp_path.glob("*.weights.h5"):
        weights.write_bytes(b"")
    with pytest.raises(backup.BackupError, match="no usable backup.*--restart"):
        restored(tmp_path)


def test_no_backup_starts_at_epoch_zero(tmp_path):
    assert restored(tmp_path / "backup")[0] == 0
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "epoch_00001.weights.h5").write_bytes(b"half")  # save never finished
    assert restored(tmp_path / "backup")[0] == 0
