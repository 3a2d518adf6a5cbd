"""Training configs: a dataclass read from JSON or YAML, type-checked, with ``--set KEY=VALUE`` overrides.

Errors name the file (or ``--set``) and the field: unknown keys list the valid ones, and a value of
the wrong type says what the field takes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Sequence

from hubkit._schema import PLAIN_NAME, problems, spec
from hubkit.errors import ConfigError
from hubkit.models.card import INPUTS
from hubkit.models.registry import CLASSIFIER_ARCHITECTURES
from hubkit.training.losses import LOSSES

__all__ = ["TASKS", "TrainConfig", "load_config", "apply_overrides"]

#: ``segment``: a tile set (`hubkit.training.prep`) trains segmenters (`hubkit.training.loop`);
#: ``classify``: a crop set (`hubkit.training.crops`) trains a glomerulus classifier
#: (`hubkit.training.classify`).
TASKS = ("segment", "classify")


@dataclass
class TrainConfig:
    """One training run. Paths are relative to the working directory.

    Attributes:
        task: one of `TASKS`.
        tiles: the tile set folder (``index.csv``, ``stats.json``; see `hubkit.training.prep`), or
            for ``classify`` the crop set folder (``labels.csv``, ``images/``, ``masks/``).
        out: where the fold models go (``<out>/<name>-fold<k>/``).
        name: model name prefix.
        architecture, encoder, classes: see `hubkit.models.create_model`.
        pretrained: offline ImageNet weights for the encoder (`hubkit.models.pretrained`), or "".
        init: ``segment``: a zoo model folder (or card file) whose weights start every fold instead
            of ``pretrained`` (fine-tuning). Its card must match ``architecture``, ``encoder`` and
            ``classes``; its input normalisation is kept; a model that trained on another fold of
            the same tile set is refused (its weights saw this fold's validation tiles).
        scale: the card's downscale factor: how much smaller than a HuBMAP slide the tiles are.
        tile_size: the card's inference tile (model-scale pixels); for ``classify``, the crop side.
        crop: training crop side.
        batch_size, epochs, samples_per_epoch: crops per step, epochs, crops per epoch.
        lr, weight_decay, warmup: AdamW peak rate, decay, warm-up share of all steps.
        loss: names joined by ``+`` (`hubkit.training.losses`); ``classify`` always uses binary
            cross-entropy weighted by the class ratio.
        folds: how many folds to split the groups into; ``train_folds``: which to train.
        positive: ``classify``: the label (``labels.csv``) of the positive class.
        inputs: ``classify``: ``rgb``, or ``rgb+mask`` to feed the glomerulus mask as a 4th channel.
        fit_all: ``classify``: after the folds, train one more model on every crop (the one to
            ship), its threshold the one that maximised balanced accuracy out of fold.
        sources_train: train on tiles from these sources only (all when empty); with
            ``sources_valid`` naming another, a cross-source run (one lab or scanner in, another out).
        sources_valid: validate on tiles from these sources only (all when empty).
        mixup: probability of mixing a batch with a shuffled copy of itself (MixUp).
        cutmix: probability of pasting a random box of a shuffled copy into the batch (CutMix).
        strength: augmentation strength.
        stain: HED stain jitter for ``segment`` (Tellez et al.): each stain's optical density scaled
            by ``1 +- stain`` and shifted by ``+- stain`` on 70% of crops; 0 = off (the starter's).
        workers: DataLoader workers.
        amp: autocast (fp16 on CUDA with a gradient scaler; bf16 on a CPU with bf16 hardware, else float32:
            `hubkit.inference.config.autocast_dtype`); off = float32 throughout.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        seed: seeds Python, numpy, torch and every crop.
        max_steps: stop each fold after this many steps (tests, smoke runs); 0 = no limit.
        training_data: text for the card.
        licence: the card's ``licence``: the terms the training data pass on to the weights.
    """

    tiles: str = spec(nonempty=True)
    task: str = spec("segment", choices=TASKS)
    out: str = spec("zoo", nonempty=True)
    name: str = spec("unet-lite0", **PLAIN_NAME)
    architecture: str = spec("Unet", nonempty=True)
    encoder: str = spec("tu-tf_efficientnet_lite0", nonempty=True)
    classes: int = spec(1, low=1, high=16)
    pretrained: str = "efficientnet-lite0"
    init: str = ""
    scale: float = spec(2.0, low=1, high=64)
    tile_size: int = spec(512, low=32, high=4096, multiple_of=32)
    crop: int = spec(320, low=32, high=4096, multiple_of=32)
    batch_size: int = spec(16, low=1, high=4096)
    epochs: int = spec(20, low=1, high=100_000)
    samples_per_epoch: int = spec(2048, low=1)
    lr: float = spec(1e-3, low=0, high=1, low_open=True)
    weight_decay: float = spec(1e-2, low=0, high=1)
    warmup: float = spec(0.05, low=0, high=1, high_open=True)
    loss: str = spec("bce+dice", pattern=r"[a-z_]+(\+[a-z_]+)*", pattern_help="loss names joined by '+'")
    folds: int = spec(4, low=1, high=100)
    train_folds: list[int] = spec(default_factory=lambda: [0], low=0)
    sources_train: list[str] = field(default_factory=list)
    sources_valid: list[str] = field(default_factory=list)
    positive: str = spec("sclerotic", nonempty=True)
    inputs: str = spec("rgb", choices=INPUTS)
    fit_all: bool = False
    mixup: float = spec(0.0, low=0, high=1)
    cutmix: float = spec(0.0, low=0, high=1)
    strength: float = spec(1.0, low=0, high=10)
    stain: float = spec(0.0, low=0, high=1)
    workers: int = spec(2, low=0, high=256)
    amp: bool = True
    device: str = spec("auto", pattern=r"auto|cpu|cuda(:[0-9]+)?", pattern_help="auto, cpu, cuda or cuda:N")
    seed: int = spec(0, low=0)
    max_steps: int = spec(0, low=0)
    training_data: str = ""
    licence: str = ""

    def __post_init__(self) -> None:
        self.validate("config")

    def validate(self, where: str) -> "TrainConfig":
        """Check every field's type and range (`hubkit._schema`), then the fields together; returns self.

        Raises:
            ConfigError: every problem found, each naming its field, prefixed with ``where``.
        """
        found = problems(self)
        if not found:
            bad = [k for k in self.train_folds if not 0 <= k < self.folds]
            if bad:
                found.append(f"train_folds {bad} are not folds 0..{self.folds - 1}")
            unknown = [n for n in self.loss.split("+") if n not in LOSSES]
            if unknown:
                found.append(f"loss names {unknown} are unknown; combine these with '+': {', '.join(LOSSES)}")
            if (self.task == "classify") != (self.architecture in CLASSIFIER_ARCHITECTURES):
                found.append(f"task {self.task!r} cannot train architecture {self.architecture!r}; classify trains "
                             f"{', '.join(CLASSIFIER_ARCHITECTURES)}, segment any other")
            if self.inputs != "rgb" and self.task != "classify":
                found.append(f"inputs {self.inputs!r} is for the classify task")
            if self.init and self.task != "segment":
                found.append("init (fine-tuning a zoo model) is for the segment task")
        if found:
            raise ConfigError(f"{where}: " + "; ".join(found))
        return self


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
