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

from hubkit._io import read_json
from hubkit._schema import PLAIN_NAME, problems, spec
from hubkit.errors import CardError
from hubkit.models.registry import ARCHITECTURES, CLASSIFIER_ARCHITECTURES, architecture_names

__all__ = ["CARD_FILE", "FLAT_CARD_SUFFIX", "CARD_FORMAT", "KINDS", "INPUTS", "SPLIT_KEYS", "ModelCard"]

CARD_FILE = "card.json"
#: A flat folder of several models names each card ``<model name>.card.json``.
FLAT_CARD_SUFFIX = ".card.json"
CARD_FORMAT = "hubkit-model-card/1"
#: The keys of a card's training config (``extra.config``) that define its split: two models trained
#: or validated as fold k of one split hold out the same tiles.
SPLIT_KEYS = ("tiles", "folds", "seed")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: What a model does: ``segmenter`` (a probability per pixel, the ensembles of `predict`) or
#: ``classifier`` (one probability per glomerulus crop, `hubkit.analysis.sclerosis`).
KINDS = ("segmenter", "classifier")
#: What a model is fed: RGB, or RGB and the glomerulus mask as a fourth channel (0/1).
INPUTS = ("rgb", "rgb+mask")


@dataclass
class ModelCard:
    """What a saved model is and how to use it.

    Attributes:
        kind: one of `KINDS`; a ``classifier`` has architecture ``Classifier``, its ``tile_size`` is
            the crop side it takes, its ``threshold`` the probability that calls a crop positive,
            and its ``class_names`` the one positive class (``["sclerotic"]``).
        inputs: one of `INPUTS`.
        licence: the weights' licence when it is not hubkit's MIT (weights trained on CC BY-NC-SA
            data carry those terms).
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
    encoder: str = spec(nonempty=True)
    kind: str = spec("segmenter", choices=KINDS)
    inputs: str = spec("rgb", choices=INPUTS)
    licence: str = ""
    name: str = spec("", **PLAIN_NAME)
    classes: int = spec(1, low=1, high=16)
    class_names: list[str] = spec(default_factory=lambda: ["glomerulus"], nonempty=True)
    scale: float = spec(1.0, low=1, high=64)
    tile_size: int = spec(512, low=32, high=4096, multiple_of=32)
    mean: tuple[float, float, float] = spec(IMAGENET_MEAN, low=0, high=1)
    std: tuple[float, float, float] = spec(IMAGENET_STD, low=0, high=10, low_open=True)
    threshold: float = spec(0.5, low=0, high=1, low_open=True, high_open=True)
    weights_file: str = spec("model.safetensors", nonempty=True, **PLAIN_NAME)
    sha256: str = spec("", pattern="(|[0-9a-f]{64})", pattern_help="empty or 64 lower-case hex digits")
    dtype: str = spec("float32", choices=("float32", "float16", "bfloat16"))
    training_data: str = ""
    cv_score: Optional[float] = spec(None, low=0, high=1)
    notes: str = ""
    hubkit_version: str = ""
    extra: dict = field(default_factory=dict)

    def validate(self, where: str = "model card") -> "ModelCard":
        """Check every field's type and range (`hubkit._schema`), then the fields together.

        Raises:
            CardError: every problem found, each naming its field, prefixed with ``where``.
        """
        found = problems(self)
        if not found:
            if self.architecture not in ARCHITECTURES:
                found.append(f"architecture {self.architecture!r} is not one of {', '.join(architecture_names())}")
            if len(self.class_names) != self.classes:
                found.append(f"class_names has {len(self.class_names)} names for {self.classes} classes")
            if (self.kind == "classifier") != (self.architecture in CLASSIFIER_ARCHITECTURES):
                found.append(f"a {self.kind} cannot have architecture {self.architecture!r}"
                             f" (classifiers: {', '.join(CLASSIFIER_ARCHITECTURES)})")
            if self.inputs != "rgb" and self.kind != "classifier":
                found.append(f"inputs {self.inputs!r} is for classifiers; a segmenter takes 'rgb'")
        if found:
            raise CardError(f"{where}: " + "; ".join(found))
        return self

    @property
    def in_channels(self) -> int:
        """Input channels: 3, or 4 with the mask (`INPUTS`)."""
        return 4 if self.inputs == "rgb+mask" else 3

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
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values).validate(where)

    @classmethod
    def read(cls, path) -> "ModelCard":
        """Read and validate a card file.

        Raises:
            CardError: missing file, bad JSON, or invalid fields; names the file.
        """
        path = Path(path)
        doc = read_json(path, CardError, "model card", missing="model card not found")
        if not isinstance(doc, dict):
            raise CardError(f"{path}: a model card is a JSON object")
        return cls.from_dict(doc, str(path))
