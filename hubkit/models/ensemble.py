"""An ensemble: the models that predict together, each with its card.

`Ensemble` replaces bare ``[(model, card), ...]`` lists: it checks that its members predict the
same classes, says which threshold and class names the ensemble has, groups members that share a
scale, tile size and normalisation (so inference reads each tile once per group), and moves its
models to a device.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from hubkit.errors import CardError
from hubkit.models.card import ModelCard

__all__ = ["Member", "Ensemble"]


@dataclass(frozen=True)
class Member:
    """One model of an ensemble and the card that says how to use it."""

    model: torch.nn.Module
    card: ModelCard

    @property
    def group_key(self) -> tuple:
        """Members with one key share tile reads: ``(scale, tile size, mean, std)``."""
        c = self.card
        return float(c.scale), int(c.tile_size), tuple(c.mean), tuple(c.std)


class Ensemble:
    """Models predicting together; their probabilities are averaged.

    Args:
        members: at least one; every card must name the same ``class_names``.

    Raises:
        CardError: no members, or members predicting different classes.
    """

    def __init__(self, members: Sequence[Member]):
        self.members = tuple(members)
        if not self.members:
            raise CardError("an ensemble needs at least one model")
        classifiers = [m.card.name for m in self.members if m.card.kind != "segmenter"]
        if classifiers:
            raise CardError(f"an ensemble segments slides; {classifiers} are classifiers "
                            "(they score glomerulus crops: hubkit.analysis.sclerosis)")
        names = {tuple(m.card.class_names) for m in self.members}
        if len(names) > 1:
            listing = ", ".join(f"{m.card.name}: {m.card.class_names}" for m in self.members)
            raise CardError(f"the models of one ensemble must predict the same classes; got {listing}")

    @classmethod
    def of(cls, pairs: Sequence[tuple[torch.nn.Module, ModelCard]]) -> "Ensemble":
        """An ensemble from ``(model, card)`` pairs."""
        return cls([Member(model, card) for model, card in pairs])

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    @property
    def class_names(self) -> list[str]:
        """One name per probability channel."""
        return list(self.members[0].card.class_names)

    @property
    def names(self) -> list[str]:
        return [m.card.name for m in self.members]

    @property
    def threshold(self) -> float:
        """The mean of the cards' thresholds."""
        return float(np.mean([m.card.threshold for m in self.members]))

    def groups(self) -> list[list[Member]]:
        """Members sharing a scale, tile size and normalisation, in first-seen order."""
        groups: dict[tuple, list[Member]] = {}
        for m in self.members:
            groups.setdefault(m.group_key, []).append(m)
        return list(groups.values())

    def first(self, n: int) -> "Ensemble":
        """The first ``n`` members (at least one), e.g. to fit a time budget."""
        return Ensemble(self.members[: max(1, int(n))])

    def to(self, device) -> "Ensemble":
        """Every model on ``device``, in eval mode and channels-last."""
        return Ensemble([Member(m.model.to(device).eval().to(memory_format=torch.channels_last), m.card)
                         for m in self.members])

    def replica(self, device) -> "Ensemble":
        """A copy of every model on ``device`` (eval mode, channels-last); this ensemble is unchanged."""
        return Ensemble([Member(copy.deepcopy(m.model).to(device).eval().to(memory_format=torch.channels_last), m.card)
                         for m in self.members])

    def describe(self) -> str:
        """One line: each model's name, scale and tile."""
        return f"{len(self)} model(s): " + ", ".join(
            f"{m.card.name} (1/{m.card.scale:g}, tile {m.card.tile_size})" for m in self.members)
