"""Training on several processes: the ranks' shares, torchrun with DDP on gloo, and resuming."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pandas as pd
import pytest
import torch

from hubkit.errors import ConfigError
from hubkit.training.distributed import EpochShard, Ranks
from hubkit.training.prep import INDEX_COLUMNS
from tests.helpers import blobs, smooth_image

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]


@pytest.mark.parametrize("samples, batch, world", [(10, 4, 2), (16, 4, 4), (12, 6, 3), (7, 2, 1), (3, 4, 2)])
def test_the_ranks_together_draw_a_single_process_epoch(samples, batch, world):
    shards = [list(EpochShard(samples, batch, Ranks(rank, world))) for rank in range(world)]
    single = list(EpochShard(samples, batch, Ranks()))
    assert single == list(range(samples // batch * batch))
    per = batch // world
    for k in range(samples // batch):  # batch k of one process is the ranks' k-th shares, in rank order
        assert sum((s[k * per : (k + 1) * per] for s in shards), []) == single[k * batch : (k + 1) * batch]


def test_a_batch_that_does_not_split_is_refused():
    with pytest.raises(ConfigError, match="batch_size 5 does not split between 2 processes"):
        EpochShard(10, 5, Ranks(0, 2))


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    """Eight synthetic 64 x 64 tiles with discs, in four groups."""
    root = tmp_path_factory.mktemp("tiles")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    rows = []
    for k in range(8):
        cv2.imwrite(str(root / "images" / f"t{k}.png"), smooth_image((64, 64), seed=k))
        cv2.imwrite(str(root / "masks" / f"t{k}.png"), blobs((64, 64), [(20 + 3 * k, 30)], 10) * 255)
        rows.append({"image": f"images/t{k}.png", "mask": f"masks/t{k}.png", "source": "synthetic",
                     "group": f"g{k // 2}", "scale": 1, "height": 64, "width": 64, "glomerulus_fraction": 0.1})
    pd.DataFrame(rows, columns=INDEX_COLUMNS).to_csv(root / "index.csv", index=False)
    return root


def _config(tmp_path, tiles, **kw) -> Path:
    cfg = dict(tiles=str(tiles), out=str(tmp_path / "zoo"), name="toy", architecture="Unet", encoder="resnet18",
               pretrained="", crop=32, tile_size=64, scale=1.0, batch_size=4, epochs=3, samples_per_epoch=16,
               lr=0.01, warmup=0.0, loss="bce", folds=2, workers=0, device="cpu", amp=False)
    cfg.update(kw)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _run(args, tmp_path, check=True):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_torchrun_trains_with_two_processes_and_rank_0_writes_one_card(tmp_path, tiles):
    config = _config(tmp_path, tiles, epochs=1, samples_per_epoch=8)
    command = [*TORCHRUN, "--nproc-per-node=2", "-m", "hubkit.cli", "train", str(config), "--summary",
               str(tmp_path / "summary.json")]
    _run(command, tmp_path)
    zoo = tmp_path / "zoo"
    assert sorted(p.name for p in zoo.iterdir()) == ["toy-fold0", "toy-fold0.done.json", "toy-fold0.log.csv"]
    assert (zoo / "toy-fold0" / "card.json").is_file()  # and no checkpoint left
    log = pd.read_csv(zoo / "toy-fold0.log.csv")
    assert len(log) == 1 and log["step"].tolist() == [2]  # 8 crops, batch 4 (2 per rank): 2 steps
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["folds"][0]["valid_tiles"] == 4
    stamp = (zoo / "toy-fold0.log.csv").stat().st_mtime_ns
    again = _run(command, tmp_path)  # both ranks find the finished fold: neither trains
    assert again.stdout.count("fold 0: finished earlier with these settings") == 1  # rank 0 says it
    assert (zoo / "toy-fold0.log.csv").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


@pytest.mark.slow
def test_two_ranks_reach_the_parameters_of_one_process_and_resume_after_a_crash(tmp_path, tiles):
    script = str(ROOT / "tests" / "training" / "ddp_toy.py")
    one, two, crashed = tmp_path / "one.pt", tmp_path / "two.pt", tmp_path / "crashed.pt"
    (tmp_path / "a").mkdir()
    _run([sys.executable, script, str(_config(tmp_path / "a", tiles)), str(one)], tmp_path)
    (tmp_path / "b").mkdir()
    _run([*TORCHRUN, "--nproc-per-node=2", script, str(_config(tmp_path / "b", tiles)), str(two)], tmp_path)
    (tmp_path / "c").mkdir()
    marker = tmp_path / "c" / "crashed-once"
    done = _run([*TORCHRUN, "--nproc-per-node=2", "--max-restarts=1", script, str(_config(tmp_path / "c", tiles)),
                 str(crashed), str(marker)], tmp_path)
    assert marker.exists() and "resuming after epoch" in done.stdout
    a, b, c = (torch.load(p, weights_only=True) for p in (one, two, crashed))
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=0, atol=1e-6), name  # DDP = one process at the same batch
        assert torch.equal(b[name], c[name]), name  # the resumed run is the uninterrupted one, exactly
    assert not any(p.name.endswith(".checkpoint.pt") for p in (tmp_path / "c" / "zoo").iterdir())


def test_a_killed_single_process_run_resumes_from_its_checkpoint(tmp_path, tiles):
    script = str(ROOT / "tests" / "training" / "ddp_toy.py")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _run([sys.executable, script, str(_config(tmp_path / "a", tiles)), str(tmp_path / "whole.pt")], tmp_path)
    config = _config(tmp_path / "b", tiles)
    marker = tmp_path / "b" / "crashed-once"
    first = _run([sys.executable, script, str(config), str(tmp_path / "part.pt"), str(marker)], tmp_path, check=False)
    assert first.returncode == 17 and (tmp_path / "b" / "zoo" / "toy-fold0.checkpoint.pt").is_file()
    second = _run([sys.executable, script, str(config), str(tmp_path / "part.pt"), str(marker)], tmp_path)
    assert "resuming after epoch 0" in second.stdout
    whole, part = (torch.load(tmp_path / n, weights_only=True) for n in ("whole.pt", "part.pt"))
    assert all(torch.equal(whole[k], part[k]) for k in whole)
    log = pd.read_csv(tmp_path / "b" / "zoo" / "toy-fold0.log.csv")
    assert log["epoch"].tolist() == [0, 1, 2]  # the log goes on where it stopped
    cli = [sys.executable, "-m", "hubkit.cli", "train", str(config), "--quiet"]
    log_file = tmp_path / "b" / "zoo" / "toy-fold0.log.csv"
    stamp = log_file.stat().st_mtime_ns
    third = _run(cli, tmp_path)  # finished: skipped, even when quiet
    assert "fold 0: finished earlier with these settings" in third.stdout and "--fresh trains it again" in third.stdout
    assert log_file.stat().st_mtime_ns == stamp
    fresh = _run([*cli, "--fresh"], tmp_path)  # the real network this time: trained from its first epoch
    assert "finished earlier" not in fresh.stdout and log_file.stat().st_mtime_ns != stamp
    assert pd.read_csv(log_file)["epoch"].tolist() == [0, 1, 2]
    assert (tmp_path / "b" / "zoo" / "toy-fold0.done.json").is_file()
    shutil.rmtree(tmp_path / "b")
