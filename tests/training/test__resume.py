"""A rerun of ``hubkit train`` picks up where an earlier one stopped: finished folds are skipped, and
checkpoints resumed, only while their settings, init weights and saved weights are those they were
written with; a recipe's folder moved as a whole is still the same run."""

import json
import shutil

import pytest
import torch

from hubkit._schema import fingerprint
from hubkit.models import zoo
from hubkit.training import TrainConfig, train_fold
from hubkit.training._resume import (
    DONE_FORMAT,
    checkpoint_path,
    done_path,
    load_checkpoint,
    save_checkpoint,
    weights_sha256,
)


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


#: The settings fingerprint of format-1 records and of checkpoints without an init sha256: the init path in it.
PATH_INIT_SKIP = ("workers", "device", "train_folds", "out")


@pytest.fixture(scope="module")
def recipe(finished, tiny_tiles, tmp_path_factory):
    """A recipe's folder: a parent model and its finished fine-tune (fold 0), to be copied by each case."""
    base, _ = finished
    root = tmp_path_factory.mktemp("recipe")
    shutil.copytree(base / "t-fold0", root / "parent")
    train_fold(_tune(tiny_tiles, root), fold=0, progress=False)
    return root


def _tune(tiles_root, root, **extra) -> TrainConfig:
    return _tiny(tiles_root, root / "tune", init=str(root / "parent"), name="tuned", **extra)


def _rewrite_record(cfg: TrainConfig, **fields) -> None:
    path = done_path(cfg, 0)
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


@pytest.mark.parametrize(
    "change, skipped, said",
    [
        ("nothing", True, "fold 0: finished earlier with these settings"),
        ("parent and fine-tune moved together", True, "fold 0: finished earlier with these settings"),
        ("parent retrained", False, "fold 0 finished with other init model; training it again"),
        ("format-1 record, nothing moved", True, "fold 0: finished earlier with these settings"),
        ("format-1 record, moved together", False, "fold 0 finished with other settings; training it again"),
        ("record of an unknown format", False, "in format 'hubkit-finished-fold/9', not one of"),
    ],
)
def test_a_fine_tune_is_known_by_its_parents_weights_not_its_path(
        recipe, tiny_tiles, tmp_path, capsys, change, skipped, said):
    root = recipe  # where it was trained (a skipped fold writes nothing); the other cases change a copy
    if change != "nothing":
        root = tmp_path / "recipe"
        shutil.copytree(recipe, root)
    if change.startswith("format-1"):  # as hubkit wrote it before the init path left the fingerprint
        _rewrite_record(_tune(tiny_tiles, root), format="hubkit-finished-fold/1",
                        config=fingerprint(_tune(tiny_tiles, root), PATH_INIT_SKIP))
    if change == "record of an unknown format":
        _rewrite_record(_tune(tiny_tiles, root), format="hubkit-finished-fold/9")
    if change.endswith("moved together"):
        root = root.rename(tmp_path / "elsewhere")
    if change == "parent retrained":
        _perturb_weights(root / "parent")
    tune = _tune(tiny_tiles, root)
    log = root / "tune" / "tuned-fold0.log.csv"
    stamp = log.stat().st_mtime_ns
    capsys.readouterr()
    train_fold(tune, fold=0, progress=False)
    assert said in capsys.readouterr().out
    assert (log.stat().st_mtime_ns == stamp) is skipped
    if not skipped:  # the new record is of this format and names the parent by its weights
        record = json.loads(done_path(tune, 0).read_text())
        assert record["format"] == DONE_FORMAT and record["init_sha256"] == weights_sha256(root / "parent")


@pytest.mark.parametrize(
    "change, resumed, said",
    [
        ("nothing", True, ""),
        ("parent and fine-tune moved together", True, ""),
        ("parent retrained", False, "a checkpoint of another init model; starting the fold afresh"),
        ("learning rate", False, "a checkpoint of another config; starting the fold afresh"),
        ("checkpoint without init sha256, nothing moved", True, ""),
        ("checkpoint without init sha256, moved together", False, "a checkpoint of another config; starting"),
    ],
)
def test_a_fine_tunes_checkpoint_resumes_while_its_parents_weights_are_the_same(
        recipe, tiny_tiles, tmp_path, change, resumed, said):
    root = tmp_path / "recipe"
    shutil.copytree(recipe / "parent", root / "parent")
    (root / "tune").mkdir()
    cfg = _tune(tiny_tiles, root)
    path = checkpoint_path(cfg, 0)
    saved = torch.nn.Linear(2, 1)
    save_checkpoint(path, cfg, {"model": saved}, {"epoch": 3, "step": 12, "best": 0.5})
    if change.startswith("checkpoint without"):  # as hubkit wrote it before the init path left the fingerprint
        ckpt = torch.load(path, weights_only=True)
        del ckpt["init_sha256"]
        torch.save({**ckpt, "config": fingerprint(cfg, PATH_INIT_SKIP)}, path)
    if change.endswith("moved together"):
        root = root.rename(tmp_path / "elsewhere")
    if change == "parent retrained":
        _perturb_weights(root / "parent")
    said_lines = []
    loaded = torch.nn.Linear(2, 1)
    counters = load_checkpoint(checkpoint_path(_tune(tiny_tiles, root), 0),
                               _tune(tiny_tiles, root, **({"lr": 5e-4} if change == "learning rate" else {})),
                               {"model": loaded}, said_lines.append)
    assert (counters == {"epoch": 3, "step": 12, "best": 0.5}) is resumed
    assert torch.equal(loaded.weight, saved.weight) is resumed
    assert said in " ".join(said_lines) and bool(said_lines) is not resumed


def test_a_killed_fold_leaves_no_record_and_a_finished_one_no_checkpoint(finished):
    base, _ = finished
    names = sorted(p.name for p in base.iterdir())
    assert names == ["t-fold0", "t-fold0.done.json", "t-fold0.log.csv"]
