"""A rerun of ``hubkit train`` picks up where an earlier one stopped: finished folds are skipped
only while their settings, init weights and saved weights are those they finished with."""

import json
import shutil

import pytest
import torch

from hubkit.models import zoo
from hubkit.training import TrainConfig, train_fold
from hubkit.training._resume import done_path, weights_sha256


def _tiny(tiles, out, **extra) -> TrainConfig:
    return TrainConfig(**{"tiles": str(tiles), "out": str(out), "name": "t", "crop": 96, "batch_size": 4, "epochs": 1,
                          "samples_per_epoch": 8, "folds": 2, "workers": 0, "strength": 0.0, "device": "cpu", **extra})


@pytest.fixture(scope="module")
def finished(tiny_tiles, tmp_path_factory):
    """A finished fold 0 (and its summary) of the tiny config, to be copied by each case."""
    out = tmp_path_factory.mktemp("finished")
    return out, train_fold(_tiny(tiny_tiles, out), fold=0, progress=False)


def _perturb_weights(model_dir):
    model, card = zoo.load(model_dir)
    with torch.no_grad():
        next(model.parameters()).add_(0.5)
    zoo.save(model, card, model_dir, dtype="float16")


def _tear_record(out):
    done_path(_tiny("x", out), 0).write_text('{"format": "hubkit-finished-fold/1", "summ')


@pytest.mark.parametrize(
    "change, overrides, fresh, skipped, said",
    [
        ("nothing", {}, False, True, "fold 0: finished earlier with these settings"),
        ("loader workers only", {"workers": 1}, False, True, "fold 0: finished earlier with these settings"),
        ("learning rate", {"lr": 5e-4}, False, False, "fold 0 finished with other settings; training it again"),
        ("seed", {"seed": 1}, False, False, "fold 0 finished with other settings; training it again"),
        ("saved weights replaced", {}, False, False, "fold 0 finished with other saved weights; training it again"),
        ("record torn", {}, False, False, "unreadable record of a finished fold (JSONDecodeError); training fold 0"),
        ("nothing, but --fresh", {}, True, False, ""),
    ],
)
def test_a_rerun_skips_a_finished_fold_only_while_nothing_it_depends_on_changed(
        finished, tiny_tiles, tmp_path, capsys, change, overrides, fresh, skipped, said):
    base, first = finished
    out = tmp_path / "moved"  # the folder moved as a whole still counts as the same run
    shutil.copytree(base, out)
    if change == "saved weights replaced":
        _perturb_weights(out / "t-fold0")
    if change == "record torn":
        _tear_record(out)
    log = out / "t-fold0.log.csv"
    stamp = log.stat().st_mtime_ns
    capsys.readouterr()
    again = train_fold(_tiny(tiny_tiles, out, **overrides), fold=0, progress=False, fresh=fresh)
    printed = capsys.readouterr().out
    assert said in printed
    assert (log.stat().st_mtime_ns == stamp) is skipped  # a skipped fold writes nothing
    if skipped:
        assert again == {**first, "model": str(out / "t-fold0")}
    else:
        assert "skipped" not in printed
        record = json.loads(done_path(_tiny(tiny_tiles, out), 0).read_text())
        assert record["model_sha256"] == weights_sha256(out / "t-fold0")  # the new run's record replaces it


def test_a_fine_tune_is_trained_again_when_its_init_model_was_retrained(finished, tiny_tiles, tmp_path, capsys):
    base, _ = finished
    parent = tmp_path / "parent"
    shutil.copytree(base / "t-fold0", parent)
    tune = _tiny(tiny_tiles, tmp_path / "tune", init=str(parent), name="tuned")
    train_fold(tune, fold=0, progress=False)
    capsys.readouterr()
    train_fold(tune, fold=0, progress=False)
    assert "finished earlier with these settings" in capsys.readouterr().out
    _perturb_weights(parent)  # the parent trained again: its fine-tune is stale
    train_fold(tune, fold=0, progress=False)
    assert "fold 0 finished with other init model; training it again" in capsys.readouterr().out
    record = json.loads(done_path(tune, 0).read_text())
    assert record["init_sha256"] == weights_sha256(parent)


def test_a_killed_fold_leaves_no_record_and_a_finished_one_no_checkpoint(finished):
    base, _ = finished
    names = sorted(p.name for p in base.iterdir())
    assert names == ["t-fold0", "t-fold0.done.json", "t-fold0.log.csv"]
