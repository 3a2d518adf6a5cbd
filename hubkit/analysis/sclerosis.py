"""Glomerulosclerosis per glomerulus and per slide, from a classifier of kind ``classifier``.

Each detected glomerulus is cut exactly as the classifier's training crops were (its mask's
bounding box resized to the card's ``tile_size``: `hubkit.models.classifier.crop_glomerulus`) and
scored ``p_sclerotic``; at or above the card's threshold it is called globally sclerotic. A slide's
summary is the count of glomeruli, the count and percent called sclerotic (the number a kidney
biopsy report gives) and, with a cortex annotation, glomeruli per mm^2 of cortex.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch

from hubkit.errors import CardError, DataError, MissingInputError
from hubkit.models import zoo
from hubkit.models.card import ModelCard
from hubkit.models.classifier import classifier_input, crop_glomerulus, crop_probabilities
from hubkit.slides.images import IMAGE_SUFFIXES, read_image, read_mask

__all__ = ["SCLEROTIC", "NON_SCLEROTIC", "GlomerulusClassifier", "sclerosis_counts", "sclerosis_summary",
           "score_crop_folder"]

#: QuPath derived classes of a classified glomerulus (base class ``Glomerulus``).
SCLEROTIC = "Glomerulus: Sclerotic"
NON_SCLEROTIC = "Glomerulus: Non-sclerotic"


@dataclass
class GlomerulusClassifier:
    """A loaded classifier and its card.

    Attributes:
        model: the eval-mode `hubkit.models.classifier.Classifier`.
        card: its card (kind ``classifier``): crop side, normalisation, inputs, threshold.
    """

    model: torch.nn.Module
    card: ModelCard

    @classmethod
    def load(cls, root, name: Optional[str] = None, device: str = "cpu") -> "GlomerulusClassifier":
        """The classifier under ``root`` (a zoo folder or a model folder; ``name`` picks one of several).

        Raises:
            CardError: no classifier there, several without ``name`` (the message lists them), or
                one that does not load.
        """
        cards = zoo.choose_cards(root, [name] if name else None, kind="classifier")
        if len(cards) > 1:
            names = sorted(ModelCard.read(p).name for p in cards)
            raise CardError(f"{root}: several classifiers ({', '.join(names)}); name one")
        model, card = zoo.load(cards[0], device)
        return cls(model, card)

    @property
    def threshold(self) -> float:
        return self.card.threshold

    def score(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """``p`` of the positive class for glomeruli: each ``(h, w, 3)`` uint8 image around one
        glomerulus with its ``(h, w)`` mask (non-zero = the glomerulus); cut by `crop_glomerulus`.

        Returns:
            ``(N,)`` probabilities.
        """
        size, card = self.card.tile_size, self.card
        inputs = [classifier_input(*crop_glomerulus(image, mask, size), card.mean, card.std, card.inputs == "rgb+mask")
                  for image, mask in zip(images, masks)]
        if not inputs:
            return np.zeros(0)
        return crop_probabilities(self.model, torch.from_numpy(np.stack(inputs)), batch_size)


def sclerosis_counts(glomeruli: int, sclerotic: int) -> dict:
    """``glomeruli``, ``sclerotic`` and ``percent_sclerotic`` (NaN without glomeruli)."""
    return {"glomeruli": glomeruli, "sclerotic": sclerotic,
            "percent_sclerotic": 100.0 * sclerotic / glomeruli if glomeruli else float("nan")}


def sclerosis_summary(table: pd.DataFrame) -> dict:
    """A slide's glomeruli and how many are called sclerotic (`sclerosis_counts`), from records
    with a ``sclerotic`` column."""
    return sclerosis_counts(len(table), int(table["sclerotic"].sum()) if len(table) else 0)


def score_crop_folder(folder, classifier: GlomerulusClassifier) -> pd.DataFrame:
    """Score a folder of glomerulus crops: images in ``folder/images/`` with masks in
    ``folder/masks/<crop>.png`` (the crop set layout), or images directly in ``folder``.

    Without a mask a crop is taken whole (it is already the glomerulus's bounding box); a
    classifier that takes the mask as input needs one for every crop.

    Returns:
        ``crop`` (file name without extension), ``p_sclerotic`` and ``sclerotic`` (at the card's
        threshold), sorted by crop.

    Raises:
        MissingInputError: no images in the folder.
        DataError: an unreadable image or mask, a mask of another size, or a missing mask the
            classifier needs; each names the file.
    """
    folder = Path(folder)
    image_dir = folder / "images" if (folder / "images").is_dir() else folder
    files = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise MissingInputError(f"{image_dir}: no crop images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    needs_mask = classifier.card.inputs == "rgb+mask"
    images, masks = [], []
    for path in files:
        image = read_image(path)
        mask_path = folder / "masks" / f"{path.stem}.png"
        if mask_path.is_file():
            mask = read_mask(mask_path)
            if mask.shape != image.shape[:2]:
                raise DataError(f"{mask_path}: mask {mask.shape} and image {image.shape[:2]} differ in size")
            if not mask.any():
                raise DataError(f"{mask_path}: an empty glomerulus mask")
        elif needs_mask:
            raise DataError(f"{mask_path}: {classifier.card.name} takes the glomerulus mask; none for {path.name}")
        else:
            mask = np.ones(image.shape[:2], np.uint8)
        images.append(image)
        masks.append(mask)
    p = classifier.score(images, masks)
    return pd.DataFrame({"crop": [f.stem for f in files], "p_sclerotic": p, "sclerotic": p >= classifier.threshold})
