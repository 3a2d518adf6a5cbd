"""The Python image a Kaggle kernel runs in: its interpreter and the versions of what it has installed.

An `ImageSpec` is read from a pip freeze (``name==version`` lines; ``hubkit/kaggle/images/`` ships
the current Kaggle GPU image's) or taken from the running interpreter (inside a Kaggle kernel). The
wheelhouse resolves hubkit's requirements against it and refuses any wheel that would change one of
its packages.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterable, Optional

from hubkit.errors import ConfigError

__all__ = ["ImageSpec", "IMAGES", "image_names", "get_image", "canonical_name", "public_version",
           "wheel_name_version"]

_IMAGE_DIR = Path(__file__).parent / "images"

#: Shipped image specs by name; ``installed`` (the running interpreter) is always valid too.
IMAGES = {"kaggle": _IMAGE_DIR / "kaggle-gpu-2026.txt"}

#: Linux x86-64 tags Kaggle's images accept (pip matches each tag exactly).
LINUX_X86_64 = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64")

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")
_PYTHON = re.compile(r"^#.*\bPython (3\.\d+)")


def canonical_name(name: str) -> str:
    """PEP 503 name: ``Typing_Extensions`` -> ``typing-extensions``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def public_version(version: str) -> str:
    """The version without its local label (``2.10.0+cu128`` -> ``2.10.0``): indexes serve public ones."""
    return version.split("+", 1)[0]


def wheel_name_version(filename: str) -> tuple[str, str]:
    """``(canonical name, version)`` of a wheel file name (``name-version[-build]-py-abi-platform.whl``).

    Raises:
        ConfigError: not a wheel file name.
    """
    parts = filename[:-4].split("-") if filename.endswith(".whl") else []
    if len(parts) not in (5, 6):
        raise ConfigError(f"{filename}: not a wheel file name (name-version-python-abi-platform.whl)")
    return canonical_name(parts[0]), parts[1]


@dataclass(frozen=True)
class ImageSpec:
    """An image's Python version and installed packages.

    Attributes:
        python: ``"3.12"``.
        packages: canonical name -> version.
        source: where the spec came from (a file, or ``installed``).
        platforms: pip platform tags to download for; empty: the running interpreter's own.
    """

    python: str
    packages: dict[str, str] = field(default_factory=dict)
    source: str = ""
    platforms: tuple[str, ...] = ()

    @classmethod
    def read(cls, path, python: Optional[str] = None, platforms: Iterable[str] = LINUX_X86_64) -> "ImageSpec":
        """Read a pip freeze; the Python version comes from a ``# ... Python 3.12 ...`` header line.

        Raises:
            ConfigError: the file is missing, a line is not ``name==version``, or no Python version.
        """
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: cannot read the image spec ({err})") from None
        packages: dict[str, str] = {}
        for number, line in enumerate(lines, 1):
            line = line.strip()
            header = _PYTHON.match(line)
            if header and python is None:
                python = header.group(1)
            if not line or line.startswith("#"):
                continue
            pin = _PIN.match(line)
            if not pin:
                raise ConfigError(f"{path}:{number}: expected 'name==version', got {line[:80]!r}")
            packages[canonical_name(pin.group(1))] = pin.group(2)
        if python is None:
            raise ConfigError(f"{path}: no '# ... Python 3.X' header line; pass the image's Python version")
        return cls(python, packages, str(path), tuple(platforms))

    @classmethod
    def installed(cls) -> "ImageSpec":
        """The running interpreter and its installed distributions (inside a Kaggle kernel: the image)."""
        packages = {canonical_name(d.metadata["Name"]): d.version for d in metadata.distributions()
                    if d.metadata["Name"]}
        return cls(f"{sys.version_info.major}.{sys.version_info.minor}", packages, "installed")

    def constraints(self, skip: Iterable[str] = ()) -> str:
        """pip constraints pinning every package (public versions; ``skip`` left out)."""
        skip = {canonical_name(s) for s in skip}
        pins = sorted((name, v) for name, v in self.packages.items() if name not in skip)
        return "".join(f"{name}=={public_version(v)}\n" for name, v in pins)

    def changes(self, wheels: Iterable[str]) -> list[str]:
        """The wheels (file names) that would upgrade or downgrade one of the image's packages."""
        found = []
        for filename in wheels:
            name, version = wheel_name_version(filename)
            have = self.packages.get(name)
            if have is not None and public_version(have) != public_version(version):
                found.append(f"{filename} (the image has {name} {have})")
        return found


def image_names() -> list[str]:
    """Valid ``--image`` names (a spec file's path is valid too)."""
    return [*IMAGES, "installed"]


def get_image(name_or_path: str) -> ImageSpec:
    """``kaggle`` (the shipped spec), ``installed`` (the running interpreter), or a freeze file's path.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones) or an unreadable file.
    """
    if name_or_path == "installed":
        return ImageSpec.installed()
    if name_or_path in IMAGES:
        return ImageSpec.read(IMAGES[name_or_path])
    if Path(name_or_path).is_file():
        return ImageSpec.read(name_or_path)
    raise ConfigError(f"no image named {name_or_path!r} and no such file; valid names: {', '.join(image_names())}")
