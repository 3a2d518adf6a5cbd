"""Training configs: a dataclass read from JSON or YAML, type-checked, with ``--set KEY=VALUE`` overrides.

Errors name the file (or ``--set``) and the field: unknown keys list the valid ones, and a value of
the wrong type says what the field takes.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Sequence

from hubkit.errors import ConfigError

__all__ = ["TrainConfig", "load_config", "apply_overrides"]


@dataclass
class TrainConfig:
    """One training run. Paths are relative to the working directory.

    Attributes:
        tiles: the tile set folder (``index.csv``, ``stats.json``; see `hubkit.training.prep`).
        out: where the fold models go (``<out>/<name>-fold<k>/``).
        name: model name prefix.
        architecture, encoder, classes: see `hubkit.models.create_model`.
        pretrained: offline ImageNet weights for the encoder (`hubkit.models.pretrained`), or "".
        scale: the card's downscale factor: how much smaller than a HuBMAP slide the tiles are.
        tile_size: the card's inference tile (model-scale pixels).
        crop: training crop side.
        batch_size, epochs, samples_per_epoch: crops per step, epochs, crops per epoch.
        lr, weight_decay, warmup: AdamW peak rate, decay, warm-up share of all steps.
        loss: names joined by ``+`` (`hubkit.training.losses`).
        folds: how many folds to split the groups into; ``train_folds``: which to train.
        sources_valid: validate on tiles from these sources only (all when empty).
        mixup: probability of mixing a batch with a shuffled copy of itself (MixUp).
        cutmix: probability of pasting a random box of a shuffled copy into the batch (CutMix).
        strength: augmentation strength.
        workers: DataLoader workers.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        seed: seeds Python, numpy, torch and every crop.
        max_steps: stop each fold after this many steps (tests, smoke runs); 0 = no limit.
        training_data: text for the card.
    """

    tiles: str
    out: str = "zoo"
    name: str = "unet-lite0"
    architecture: str = "Unet"
    encoder: str = "tu-tf_efficientnet_lite0"
    classes: int = 1
    pretrained: str = "efficientnet-lite0"
    scale: float = 2.0
    tile_size: int = 512
    crop: int = 320
    batch_size: int = 16
    epochs: int = 20
    samples_per_epoch: int = 2048
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup: float = 0.05
    loss: str = "bce+dice"
    folds: int = 4
    train_folds: list = field(default_factory=lambda: [0])
    sources_valid: list = field(default_factory=list)
    mixup: float = 0.0
    cutmix: float = 0.0
    strength: float = 1.0
    workers: int = 2
    device: str = "auto"
    seed: int = 0
    max_steps: int = 0
    training_data: str = ""

    def __post_init__(self) -> None:
        self.validate("config")

    def validate(self, where: str) -> "TrainConfig":
        """Check every field's type and range; returns self.

        Raises:
            ConfigError: the first bad field, prefixed with ``where``.
        """
        for f in fields(self):
            value = getattr(self, f.name)
            kind = _KINDS.get(f.name) or type(f.default if f.default is not MISSING else f.default_factory())
            ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
            if kind is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok:
                raise ConfigError(f"{where}: {f.name} must be {kind.__name__}, got {value!r}")
        for name in ("epochs", "batch_size", "samples_per_epoch", "folds", "tile_size", "crop"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}: {name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.scale < 1:
            raise ConfigError(f"{where}: lr must be > 0 and scale >= 1, got lr={self.lr}, scale={self.scale}")
        bad = [k for k in self.train_folds if not isinstance(k, int) or not 0 <= k < self.folds]
        if bad:
            raise ConfigError(f"{where}: train_folds {bad} are not folds 0..{self.folds - 1}")
        return self


#: Fields whose type is not their default's.
_KINDS = {"tiles": str}


def load_config(path) -> TrainConfig:
    """Read a JSON or YAML config file into a `TrainConfig`.

    Raises:
        ConfigError: unreadable or empty file, not a mapping, unknown keys, a missing ``tiles`` or a
            field of the wrong type; names the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except Exception as err:  # noqa: BLE001 - JSON, YAML and decoding errors of many kinds
        raise ConfigError(f"{path}: not a readable {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'} "
                          f"config ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys to values, got {type(doc).__name__}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown config keys {unknown}; valid keys: {', '.join(sorted(known))}")
    if "tiles" not in doc:
        raise ConfigError(f"{path}: 'tiles' (the tile set folder) is required")
    try:
        return TrainConfig(**doc)
    except ConfigError as err:
        raise ConfigError(str(err).replace("config:", f"{path}:", 1)) from None


def apply_overrides(cfg: TrainConfig, items: Sequence[str]) -> TrainConfig:
    """``KEY=VALUE`` overrides (VALUE read as JSON, else as a string) applied to a config.

    Raises:
        ConfigError: an item without ``=``, an unknown key, or a value of the wrong type.
    """
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"--set: unknown keys {unknown}; valid keys: {', '.join(sorted(known))}")
    try:
        return replace(cfg, **overrides)
    except ConfigError as err:
        raise ConfigError(str(err).replace("config:", "--set:", 1)) from None
