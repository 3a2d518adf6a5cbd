"""How to run an ensemble over a slide: one dataclass, validated once, whose fields are the CLI's options.

Each field's ``metadata`` holds its help text (``"help"``) and, for options the command line offers,
its flag (``"flag"``); `hubkit.cli` builds its options from them, so defaults live here alone.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field, fields
from typing import Optional

import torch

from hubkit._schema import fingerprint
from hubkit.errors import ConfigError
from hubkit.formats.specks import check_min_area
from hubkit.inference.blend import BlendMode
from hubkit.inference.tiling import MIN_TISSUE_FRACTION
from hubkit.inference.tta import TTA, get_tta

__all__ = ["PredictConfig", "resolve_device", "autocast_dtype", "autocast", "cpu_has_native_bf16"]


def _opt(default, help: str, flag: Optional[str] = None, **extra):
    return field(default=default, metadata={"help": help, "flag": flag, **extra})


def resolve_device(name: str) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a torch device.

    Raises:
        ConfigError: an unknown name, or CUDA asked for where there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {name!r}; valid names: auto, cpu, cuda, cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; valid names: auto, cpu, cuda, cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU here; use auto or cpu")
    return device


# CPU features that compute bf16 in hardware: x86's AVX512-BF16 and AMX, the ARM BF16 extension.
_BF16_FEATURES = ("avx512_bf16", "amx_bf16", "bf16")
_CPUINFO = "/proc/cpuinfo"  # Linux's CPU flags (x86 "flags", ARM "Features")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (`_BF16_FEATURES`), the probe behind `autocast_dtype`.

    Without it oneDNN runs bf16 in slow fallback kernels: on a 2-core AVX2 EPYC a Lite0 U-Net took 4.7 s a
    512 px tile under bf16 autocast against 0.45 s in float32 (`bench/bench_model.py`). Read from
    torch's CPU capabilities (where this torch has them) and ``/proc/cpuinfo``'s flags (where the system
    has one); found in neither = no.
    """
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    found = {name for name, value in (capabilities() if capabilities else {}).items() if value is True}
    try:
        with open(_CPUINFO) as f:
            found.update(word for line in f if line.lower().startswith(("flags", "features"))
                         for word in line.split(":", 1)[1].split())
    except OSError:
        pass
    return any(name in found for name in _BF16_FEATURES)


def autocast_dtype(device: torch.device) -> Optional[torch.dtype]:
    """The mixed-precision dtype hubkit runs and trains a model in on ``device``: fp16 on CUDA (a T4
    has no bf16); bf16 on a CPU that computes it in hardware (`cpu_has_native_bf16`; fp16 kernels are
    slow on CPUs); None on any other CPU, which runs float32, ~10x faster there than bf16."""
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else None


def autocast(device: torch.device, enabled: bool = True) -> torch.autocast:
    """The autocast context hubkit runs a model in on ``device``: `autocast_dtype`'s, or float32 (a
    disabled context) where that is None or ``enabled`` is False (``amp`` off)."""
    dtype = autocast_dtype(device)
    return torch.autocast(device.type, dtype=dtype, enabled=enabled and dtype is not None)


@dataclass
class PredictConfig:
    """How to run an ensemble over a slide (MONAI's sliding-window names where they exist).

    Attributes:
        overlap: tile overlap as a fraction of the tile (``roi_size`` is each card's tile size).
        mode: blending weights, a `BlendMode` (``"gaussian"`` or ``"constant"``).
        sigma_scale: width of the Gaussian relative to the tile.
        sw_batch_size: tiles per forward pass; None = 1 on CPU and 16 on CUDA. On 2 cores with glibc's
            own malloc 1 was fastest (a 60 Mpx slide: 17.2 s at 1, 20.5 s at 2, 23.3 s at 4); with
            `hubkit.inference.keep_freed_memory`, as hubkit commands run, 1, 2 and 4 are level (a dense
            60 Mpx slide: 7.8 / 7.5 / 7.5 s, against 7.8 / 10.6 / 10.2 s without).
        tta: a `hubkit.inference.tta` set: ``"none"``, ``"flip"``, ``"flip2"``, ``"d4"``.
        threshold: probability cut; None = the ensemble's (the mean of the cards' thresholds).
        seed_threshold: hysteresis: predicted masks with no pixel above this cut are dropped, so
            outlines are drawn at ``threshold`` and glomeruli found at this one; None = off. Must
            not be below the threshold.
        min_tissue: tiles with less tissue than this are skipped (written as background).
        min_area: predicted masks of fewer full-resolution pixels are dropped as specks (2021: each
            8-connected component; 2023: each instance); None = the format's default.
        thumb_scale: downscale of the thumbnail the tissue test looks at.
        strip_width: full-resolution columns upsampled and handed to the sink at a time.
        reader_threads: threads reading tiles ahead of the model; None = 2 on CPU (the model needs
            the cores), every core on CUDA (reading is then the bottleneck).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        devices: devices that share a folder's slides (`device_list`).
        torch_threads: torch's intra-op threads; None = on a CPU, `hubkit.inference.threads.ThreadGovernor`
            switches between every core and one, whichever runs faster under the load of the moment.
        amp: autocast (`autocast_dtype`: fp16 on CUDA, bf16 on a CPU with bf16 hardware, else float32).
        progress: a tqdm bar and a timing line per slide.

    Raises:
        ConfigError: on construction (and `dataclasses.replace`), any value out of range.
    """

    overlap: float = _opt(0.25, "tile overlap as a fraction of the tile", "--overlap")
    mode: BlendMode = _opt(BlendMode.GAUSSIAN, "blending weights", "--mode", choices=[m.value for m in BlendMode])
    sigma_scale: float = _opt(0.125, "Gaussian width relative to the tile")
    sw_batch_size: Optional[int] = _opt(None, "tiles per forward pass (default: 1 on CPU, 16 on CUDA)", "--batch")
    tta: str = _opt("flip", "test-time augmentation", "--tta", choices=list(TTA))
    threshold: Optional[float] = _opt(None, "probability cut (default: the cards' mean threshold)", "--threshold")
    seed_threshold: Optional[float] = _opt(None, "hysteresis: drop predicted masks with no pixel above this cut "
                                                 "(outlines stay at --threshold; default: off)", "--seed-threshold")
    min_tissue: float = _opt(MIN_TISSUE_FRACTION, "tiles with less tissue than this fraction are skipped", "--min-tissue")
    min_area: Optional[int] = _opt(None, "predicted components (2021) or instances (2023) of fewer full-resolution "
                                         "pixels are dropped as specks; 0 keeps all (default: the format's)",
                                   "--min-area")
    thumb_scale: int = _opt(32, "downscale of the thumbnail the tissue test looks at")
    strip_width: int = _opt(512, "full-resolution columns handed to the sink at a time")
    reader_threads: Optional[int] = _opt(None, "threads reading tiles ahead of the model (default: 2 on CPU, all cores on CUDA)")
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N", "--device")
    devices: str = _opt("", "comma-separated devices that share the slides, one model replica each "
                            "(default: every visible GPU, else --device)", "--devices")
    torch_threads: Optional[int] = _opt(None, "torch intra-op threads (default on a CPU: every core while they are "
                                              "free, one while other processes take them)", "--torch-threads")
    amp: bool = _opt(True, "autocast: fp16 on CUDA, bf16 on a CPU with bf16 hardware (else float32)")
    progress: bool = _opt(False, "progress bar and a timing line per slide")

    def __post_init__(self) -> None:
        self.mode = BlendMode.parse(self.mode)
        get_tta(self.tta)

        def bad(name: str, rule: str) -> ConfigError:
            return ConfigError(f"{name} must be {rule}, got {getattr(self, name)!r}")

        if not (isinstance(self.overlap, (int, float)) and 0 <= self.overlap < 1):
            raise bad("overlap", "a fraction in [0, 1)")
        if self.threshold is not None and not (isinstance(self.threshold, (int, float)) and 0 < self.threshold < 1):
            raise bad("threshold", "in (0, 1)")
        if self.seed_threshold is not None and not (isinstance(self.seed_threshold, (int, float))
                                                    and 0 < self.seed_threshold < 1
                                                    and self.seed_threshold >= (self.threshold or 0)):
            raise bad("seed_threshold", "in (0, 1) and not below the threshold")
        if not (isinstance(self.min_tissue, (int, float)) and 0 <= self.min_tissue <= 1):
            raise bad("min_tissue", "a fraction in [0, 1]")
        if not (isinstance(self.sigma_scale, (int, float)) and math.isfinite(self.sigma_scale) and self.sigma_scale > 0):
            raise bad("sigma_scale", "a positive number")
        if self.min_area is not None:
            check_min_area(self.min_area)
        for name in ("sw_batch_size", "reader_threads", "torch_threads"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise bad(name, "a whole number >= 1 or None")
        for name in ("strip_width", "thumb_scale"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise bad(name, "a whole number >= 1")

    @classmethod
    def cli_fields(cls):
        """The fields the command line offers, in declaration order."""
        return [f for f in fields(cls) if f.metadata.get("flag")]

    def batch_size(self, device: torch.device) -> int:
        return self.sw_batch_size or (16 if device.type == "cuda" else 1)

    def readers(self, device: torch.device) -> int:
        return self.reader_threads or (max(2, os.cpu_count() or 2) if device.type == "cuda" else 2)

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def device_list(self) -> list[torch.device]:
        """The devices that share a folder's slides: ``devices`` if set, else every visible GPU
        when ``device`` is ``auto`` or ``cuda`` and there are several, else ``device`` alone.

        Raises:
            ConfigError: an unknown device name, or CUDA asked for where there is none.
        """
        if self.devices.strip():
            return [resolve_device(d.strip()) for d in self.devices.split(",") if d.strip()]
        if self.device in ("auto", "cuda") and torch.cuda.device_count() > 1:
            return [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
        return [self.torch_device()]

    def apply_threads(self) -> None:
        """Set torch's intra-op threads of this process to ``torch_threads`` (when set)."""
        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)

    def fingerprint(self) -> str:
        """sha256 of the settings that change a prediction (not where or how fast it runs)."""
        return fingerprint(self, skip=("device", "devices", "torch_threads", "reader_threads", "progress"))
