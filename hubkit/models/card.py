"""Model cards: the JSON file saved beside every model's weights.

A card says everything inference needs to use a model without guessing: architecture and encoder,
classes, the scale and tile size it was trained at, input normalisation, threshold, and the
weights' sha256, plus where its training data came from and its CV score.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

from hubkit.errors import CardError
from hubkit.models.registry import ARCHITECTURES, architecture_names

__all__ = ["CARD_FILE", "FLAT_CARD_SUFFIX", "CARD_FORMAT", "ModelCard"]

CARD_FILE = "card.json"
#: A flat folder of several models names each card ``<model name>.card.json``.
FLAT_CARD_SUFFIX = ".card.json"
CARD_FORMAT = "hubkit-model-card/1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _plain_file_name(value: str) -> bool:
    """One path component: no separator, not '.' or '..', no control characters."""
    return value not in (".", "..") and not any(c in value for c in "/\\") and all(ord(c) >= 32 for c in value)


@dataclass
class ModelCard:
    """What a saved model is and how to use it.

    Attributes:
        name: a short unique name (folder name by default).
        architecture: a key of `hubkit.models.registry.ARCHITECTURES` (``"Unet"``, ``"FPN"``, ...).
        encoder: an smp encoder name, or ``"tu-<timm model>"``.
        classes: output channels: 1 = glomerulus; 2 = healthy / unhealthy glomerulus (the 4th-place
            solution's head; the glomerulus probability is the larger of the two); a 2023 model names
            its competition classes (``blood_vessel``, ``glomerulus``, ``unsure``).
        class_names: one name per output channel.
        scale: downscale factor of the model's input relative to the full-resolution slide
            (2 = the model sees the slide at half resolution).
        tile_size: side in pixels, at model scale, of the tiles it was trained on and predicts.
        mean, std: per-channel RGB normalisation on a 0-1 scale: ``x = (rgb / 255 - mean) / std``.
        threshold: probability above which a pixel is glomerulus.
        weights_file: the safetensors file beside the card.
        sha256: hex digest of ``weights_file``; checked on load.
        dtype: how the weights are stored (``"float32"`` or ``"float16"``); loaded as float32.
        training_data: what it was trained on (sources, scales, tiles).
        cv_score: mean validation Dice, if measured.
        notes: anything else a user should know (folds, limits).
        hubkit_version: the hubkit that saved it.
        extra: free-form fields (per-fold scores, config).
    """

    architecture: str
    encoder: str
    name: str = ""
    classes: int = 1
    class_names: list = field(default_factory=lambda: ["glomerulus"])
    scale: float = 1.0
    tile_size: int = 512
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    threshold: float = 0.5
    weights_file: str = "model.safetensors"
    sha256: str = ""
    dtype: str = "float32"
    training_data: str = ""
    cv_score: Optional[float] = None
    notes: str = ""
    hubkit_version: str = ""
    extra: dict = field(default_factory=dict)

    def validate(self, where: str = "model card") -> "ModelCard":
        """Check every field; returns self.

        Raises:
            CardError: the first problem found, prefixed with ``where``.
        """
        problems = []
        for key in ("name", "weights_file"):
            value = getattr(self, key)
            if not isinstance(value, str) or (value and not _plain_file_name(value)):
                problems.append(f"{key} must be a plain file name (no folders, no '..'), got {value!r}")
        if not self.weights_file:
            problems.append("weights_file is empty")
        if self.architecture not in ARCHITECTURES:
            problems.append(f"architecture {self.architecture!r} is not one of {', '.join(architecture_names())}")
        if not self.encoder:
            problems.append("encoder is empty")
        if not (isinstance(self.classes, int) and not isinstance(self.classes, bool) and 1 <= self.classes <= 16):
            problems.append(f"classes must be a whole number of output channels from 1 to 16, got {self.classes!r}")
        if len(self.class_names) != self.classes:
            problems.append(f"class_names has {len(self.class_names)} names for {self.classes} classes")
        if not (isinstance(self.scale, (int, float)) and self.scale >= 1):
            problems.append(f"scale is a downscale factor >= 1, got {self.scale!r}")
        if not (isinstance(self.tile_size, int) and self.tile_size >= 32 and self.tile_size % 32 == 0):
            problems.append(f"tile_size must be a multiple of 32, got {self.tile_size!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            problems.append(f"mean and std need 3 values with std > 0, got mean={self.mean}, std={self.std}")
        if not 0 < self.threshold < 1:
            problems.append(f"threshold must be in (0, 1), got {self.threshold}")
        if self.dtype not in ("float32", "float16", "bfloat16"):
            problems.append(f"dtype must be float32, float16 or bfloat16, got {self.dtype!r}")
        if problems:
            raise CardError(f"{where}: " + "; ".join(problems))
        return self

    def to_json(self) -> str:
        doc = {"format": CARD_FORMAT, **asdict(self)}
        doc["mean"], doc["std"] = list(self.mean), list(self.std)
        return json.dumps(doc, indent=2)

    @classmethod
    def from_dict(cls, doc: dict, where: str = "model card") -> "ModelCard":
        if doc.get("format") != CARD_FORMAT:
            raise CardError(f"{where}: not a hubkit model card (format {doc.get('format')!r}, expected {CARD_FORMAT!r})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known - {"format"})
        if unknown:
            raise CardError(f"{where}: unknown fields {unknown}")
        missing = [k for k in ("architecture", "encoder") if k not in doc]
        if missing:
            raise CardError(f"{where}: missing fields {missing}")
        values = {k: v for k, v in doc.items() if k in known}
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values).validate(where)

    @classmethod
    def read(cls, path) -> "ModelCard":
        """Read and validate a card file.

        Raises:
            CardError: missing file, bad JSON, or invalid fields; names the file.
        """
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CardError(f"{path}: model card not found") from None
        except (OSError, ValueError) as err:
            raise CardError(f"{path}: unreadable model card ({err})") from None
        if not isinstance(doc, dict):
            raise CardError(f"{path}: a model card is a JSON object")
        return cls.from_dict(doc, str(path))
