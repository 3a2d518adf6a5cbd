"""What lets a rerun of ``hubkit train`` pick up where an earlier run stopped.

Two files beside a fold's model, both in the config's ``out`` folder:

* ``<name>-fold<k>.checkpoint.pt``: the last finished epoch of a fold still training (model,
  optimiser, schedule and scaler states, counters); a rerun resumes after it, and it is removed
  when the fold ends.
* ``<name>-fold<k>.done.json``: a finished fold's record: the fingerprint of its settings, the
  sha256 of the model it was fine-tuned from and of the weights it saved, and its summary. A rerun
  with the same settings, the same init weights and those weights still in place skips the fold
  and returns the summary, so a recipe of many folds and steps (``data_prep/train_folds.sh``) can
  be stopped and started again, on a CPU over a day, without training anything twice.

Settings that do not change a result (`NOT_IN_FINGERPRINT`: the loader's workers, the device, which
folds this run trains, and the ``out`` folder, which may be moved as a whole) may differ between the runs.
The model a fine-tune starts from (``init``) is known by the sha256 of its weights, in the record and in
the checkpoint alike, not by its path: a recipe's folder moved as a whole (parents and fine-tunes
together) is skipped or resumed, while a parent trained again makes its fine-tunes stale.

Records and checkpoints written before that (format ``hubkit-finished-fold/1``, checkpoints without
an ``init_sha256``) fingerprinted the init path with the settings; they are read by that rule still.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import torch

from hubkit._io import atomic_write, sha256_file
from hubkit._schema import fingerprint
from hubkit.errors import CardError
from hubkit.models.card import ModelCard
from hubkit.models.zoo import card_file
from hubkit.training.config import TrainConfig

#: Settings a resumed run may change: the data loader's, where it runs, where its folder lies and where
#: the model it fine-tunes lies (that model is checked by its weights' sha256 instead).
NOT_IN_FINGERPRINT = ("workers", "device", "train_folds", "out", "init")
#: The finished-fold record's format tag.
DONE_FORMAT = "hubkit-finished-fold/2"
#: The format of records whose settings fingerprint still held the init path, read by that rule.
_DONE_FORMAT_PATH_INIT = "hubkit-finished-fold/1"

Log = Callable[[str], None]


def checkpoint_path(cfg: TrainConfig, fold: int) -> Path:
    """Where a fold's last finished epoch is kept until the fold ends (resumed by a rerun)."""
    return Path(cfg.out) / f"{cfg.name}-fold{fold}.checkpoint.pt"


def done_path(cfg: TrainConfig, fold: int) -> Path:
    """Where a finished fold's record is kept (a rerun with the same settings skips the fold)."""
    return Path(cfg.out) / f"{cfg.name}-fold{fold}.done.json"


def settings_fingerprint(cfg: TrainConfig) -> str:
    """sha256 of the settings that change what a fold learns (all but `NOT_IN_FINGERPRINT`)."""
    return fingerprint(cfg, NOT_IN_FINGERPRINT)


def _path_init_fingerprint(cfg: TrainConfig) -> str:
    """The fingerprint of records and checkpoints written before the init model was known by its weights."""
    return fingerprint(cfg, tuple(k for k in NOT_IN_FINGERPRINT if k != "init"))


def _init_sha256(cfg: TrainConfig) -> Optional[str]:
    return weights_sha256(cfg.init) if cfg.init else None


def load_checkpoint(path: Path, cfg: TrainConfig, parts: dict, log: Log) -> Optional[dict]:
    """Load a checkpoint into ``parts`` (model, optim, sched, scaler); its counters, or None where
    there is none, it cannot be read or another config wrote it (each said through ``log``)."""
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a torn or foreign file: start the fold afresh
        log(f"hubkit: {path}: unreadable checkpoint ({type(err).__name__}); starting the fold afresh")
        return None
    if "init_sha256" in ckpt:
        same = {"config": ckpt.get("config") == settings_fingerprint(cfg),
                "init model": ckpt["init_sha256"] == _init_sha256(cfg)}
    else:  # written when the init path was part of the fingerprint
        same = {"config": ckpt.get("config") == _path_init_fingerprint(cfg)}
    changed = [what for what, ok in same.items() if not ok]
    if changed:
        log(f"hubkit: {path}: a checkpoint of another {' and '.join(changed)}; starting the fold afresh")
        return None
    for name, obj in parts.items():
        obj.load_state_dict(ckpt[name])
    return {k: ckpt[k] for k in ("epoch", "step", "best")}


def save_checkpoint(path: Path, cfg: TrainConfig, parts: dict, counters: dict) -> None:
    """Write ``parts``' states and ``counters`` (epoch to resume at, step, best) atomically."""
    with atomic_write(path, "wb") as f:
        torch.save({**{k: v.state_dict() for k, v in parts.items()}, **counters,
                    "config": settings_fingerprint(cfg), "init_sha256": _init_sha256(cfg)}, f)


def weights_sha256(model_dir) -> Optional[str]:
    """The sha256 of a model folder's weights where they match its card's; None where the folder,
    its card or its weights are missing, unreadable or do not match."""
    try:
        path = card_file(model_dir)
        card = ModelCard.read(path)
        digest = sha256_file(path.parent / card.weights_file)
    except (OSError, CardError, ValueError):
        return None
    return digest if digest == card.sha256 else None


def record_done(cfg: TrainConfig, fold: int, model_dir: Path, summary: dict) -> None:
    """Keep a finished fold's record (nothing where it saved no model)."""
    digest = weights_sha256(model_dir)
    if digest is None:
        return
    record = {"format": DONE_FORMAT, "config": settings_fingerprint(cfg),
              "init_sha256": _init_sha256(cfg),
              "model_sha256": digest, "summary": summary}
    with atomic_write(done_path(cfg, fold), "w") as f:
        f.write(json.dumps(record, indent=2))


def done_summary(cfg: TrainConfig, fold: int, model_dir: Path, log: Log) -> Optional[dict]:
    """A finished fold's summary where its record matches this run: the same settings, the same
    init weights (a retrained parent makes its fine-tunes stale) and the fold's weights as they
    were saved. None otherwise, with the reason said through ``log`` where a record exists."""
    path = done_path(cfg, fold)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        summary = dict(record["summary"])
        summary["dice"] = float(summary["dice"])  # what the skip reports
        fingerprints = {DONE_FORMAT: settings_fingerprint, _DONE_FORMAT_PATH_INIT: _path_init_fingerprint}
        if record["format"] not in fingerprints:
            log(f"hubkit: {path}: a record of a finished fold in format {record['format']!r}, not one of "
                f"{sorted(fingerprints)}; training fold {fold} again")
            return None
        checks = {"settings": record["config"] == fingerprints[record["format"]](cfg),
                  "init model": record["init_sha256"] == _init_sha256(cfg),
                  "saved weights": record["model_sha256"] == weights_sha256(model_dir)}
    except (OSError, ValueError, KeyError, TypeError) as err:
        log(f"hubkit: {path}: unreadable record of a finished fold ({type(err).__name__}); training fold {fold} again")
        return None
    changed = [what for what, same in checks.items() if not same]
    if changed:
        log(f"hubkit: {path}: fold {fold} finished with other {', '.join(changed)}; training it again")
        return None
    return {**summary, "model": str(model_dir)}  # where the folder lies now
