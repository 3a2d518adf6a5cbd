"""Test-time augmentation: the dihedral transforms of a square tile and their exact inverses.

Each transform is a flip (or not) followed by ``k`` quarter turns; inverses undo them exactly, so
averaging ``inverse(model(forward(x)))`` over transforms is the flip/rot90 TTA of the winners.
Works on torch tensors or numpy arrays shaped ``(..., height, width)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubkit.errors import ConfigError

__all__ = ["Transform", "TTA", "tta_names", "get_tta"]


@dataclass(frozen=True)
class Transform:
    """Flip left-right (``hflip``) first, then rotate ``k`` quarter turns counter-clockwise."""

    name: str
    hflip: bool = False
    k: int = 0

    def forward(self, x):
        if self.hflip:
            x = _flip(x)
        return _rot90(x, self.k) if self.k else x

    def inverse(self, y):
        if self.k:
            y = _rot90(y, -self.k)
        return _flip(y) if self.hflip else y


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _flip(x):
    return x.flip(-1) if _is_torch(x) else x[..., ::-1]


def _rot90(x, k):
    if _is_torch(x):
        return x.rot90(k, dims=(-2, -1))
    import numpy as np

    return np.rot90(x, k, axes=(-2, -1))


#: Named TTA sets, from none to the full dihedral group.
TTA = {
    "none": (Transform("identity"),),
    "flip": (Transform("identity"), Transform("hflip", hflip=True)),
    "flip2": (Transform("identity"), Transform("hflip", hflip=True), Transform("vflip", hflip=True, k=2)),
    "d4": tuple(Transform(f"{'flip-' if f else ''}rot{90 * k}", hflip=f, k=k) for f in (False, True) for k in range(4)),
}


def tta_names() -> list[str]:
    return list(TTA)


def get_tta(name: str) -> tuple[Transform, ...]:
    """The transforms of a named TTA set; unknown names raise an error listing the valid ones."""
    if name not in TTA:
        raise ConfigError(f"unknown TTA {name!r}; valid names: {', '.join(TTA)}")
    return TTA[name]
