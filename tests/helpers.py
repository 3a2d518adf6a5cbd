"""Helpers the tests share: toy models with known outputs, test images and small CSVs."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from hubkit.models.card import ModelCard
from hubkit.models.ensemble import Ensemble

__all__ = ["Echo", "echo", "smooth_image", "EXACT", "csv_file", "KERNELS", "kernel_code", "NetworkAccessError",
           "guard_network",
           "tiny_card", "blobs", "load_fuzzed", "SeededSource"]

#: The repository's Kaggle kernels.
KERNELS = Path(__file__).resolve().parents[1] / "kernels"

#: Settings under which stitching is exact: fp32, every tile predicted, every component kept, on the CPU.
EXACT = dict(amp=False, min_tissue=0.0, min_area=0, device="cpu")


class Echo(torch.nn.Module):
    """A 'model' whose probability is the input's red channel: stitching must give it back."""

    def forward(self, x):
        return torch.logit(x[:, :1].clamp(1e-6, 1 - 1e-6))


def echo(scale=1.0, tile=64, threshold=0.5, class_names=("glomerulus",), model=None) -> Ensemble:
    """A one-model ensemble of `Echo` (or ``model``) with a card of the given scale and tile."""
    card = ModelCard("Unet", "resnet18", name="echo", scale=scale, tile_size=tile, mean=(0, 0, 0), std=(1, 1, 1),
                     threshold=threshold, classes=len(class_names), class_names=list(class_names))
    return Ensemble.of([(model or Echo(), card)])


def smooth_image(shape, seed=0) -> np.ndarray:
    """``(height, width, 3)`` uint8: a smooth random red channel, saturated enough to be tissue everywhere."""
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 226, (shape[0] // 8 + 1, shape[1] // 8 + 1, 3)).astype(np.uint8)
    big = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    big[..., 1:] = 200
    return big


def csv_file(path, header, rows):
    """Write ``rows`` under ``header`` as a CSV; returns the path."""
    pd.DataFrame(rows, columns=header).to_csv(path, index=False)
    return path


def kernel_code(kernel: str) -> str:
    """The code cells of a kernel's notebook, joined."""
    meta = json.loads((KERNELS / kernel / "kernel-metadata.json").read_text())
    book = json.loads((KERNELS / kernel / meta["code_file"]).read_text())
    return "\n".join("".join(c["source"]) for c in book["cells"] if c["cell_type"] == "code")


def tiny_card(**kw) -> ModelCard:
    """A card for a small Unet/resnet18 at scale 2, tile 64, with ``kw`` changed."""
    fields = dict(architecture="Unet", encoder="resnet18", tile_size=64, scale=2)
    fields.update(kw)
    return ModelCard(**fields)


def load_fuzzed(folder, name: str, doc, loader, error: type):
    """Write ``doc`` as JSON to ``folder/name`` and load it: what ``loader`` returns, or None when it
    raised ``error`` (any other exception fails the test), whose message must name the file."""
    path = Path(folder) / name
    path.write_text(json.dumps(doc))
    try:
        return loader(path)
    except error as err:
        assert str(path) in str(err)
        return None


def blobs(shape, centres, radius) -> np.ndarray:
    """``(height, width)`` uint8 mask of discs of ``radius`` around ``(row, col)`` centres."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, np.uint8)
    for r, c in centres:
        mask[(yy - r) ** 2 + (xx - c) ** 2 <= radius**2] = 1
    return mask


class NetworkAccessError(RuntimeError):
    """Raised when code under test tries to open a network connection."""


def _local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = str(address[0]) if address else ""
    return host in ("localhost", "::1") or host.startswith("127.")


def guard_network(monkeypatch) -> None:
    """Make any connection to a non-loopback address (or DNS lookup) raise `NetworkAccessError`."""
    real_connect, real_connect_ex, real_getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def connect(self, address):
        if not _local(address):
            raise NetworkAccessError(f"network access during a test: connect to {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not _local(address):
            raise NetworkAccessError(f"network access during a test: connect to {address!r}")
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            raise NetworkAccessError(f"network access during a test: DNS lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class _Faulty(torch.nn.Module):
    """A model wrapper that sleeps per forward pass, and SIGKILLs its own process on its first
    forward pass if ``kill_marker`` does not exist yet (creating it), as an out-of-memory kill would."""

    def __init__(self, model, sleep_s: float = 0.0, kill_marker: str = ""):
        super().__init__()
        self.model, self.sleep_s, self.kill_marker = model, sleep_s, kill_marker

    def forward(self, x):
        import os
        import signal
        import time

        if self.kill_marker and not os.path.exists(self.kill_marker):
            open(self.kill_marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.sleep_s)
        return self.model(x)


@dataclass(frozen=True)
class SeededSource:
    """A model source for Dask workers (picklable): a small smp Unet/resnet18 with weights from a
    fixed seed, so every process builds the same model; optionally slow or killing once (`_Faulty`)."""

    seed: int = 0
    sleep_s: float = 0.0
    kill_marker: str = ""

    def cards(self) -> list[ModelCard]:
        return [tiny_card(name=f"seeded-{self.seed}", sha256=f"{self.seed:064x}")]

    def load(self, device: str = "cpu") -> Ensemble:
        from hubkit.models.registry import create_model

        torch.manual_seed(self.seed)
        model = create_model("Unet", "resnet18", 1).eval()
        if self.sleep_s or self.kill_marker:
            model = _Faulty(model, self.sleep_s, self.kill_marker)
        return Ensemble.of([(model, self.cards()[0])]).to(device)
