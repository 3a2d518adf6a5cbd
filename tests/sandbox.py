"""Run a Kaggle kernel here as Kaggle would: in a venv built like the image, a fresh copy of it per
kernel, ``/kaggle/input`` read-only in the new mount layout, ``/kaggle/working`` writable, and, for
kernels with the internet off, no network at all (a network namespace with only loopback).

Linux namespaces need root (CI and the dev machines run as root); `prerequisites` says what is missing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
MAKE_VENV = REPO / "kernels" / "image" / "make-venv.sh"

#: Where the image venv is kept between runs (about 8 GB; rebuilt when its spec changes).
VENV = Path(os.environ.get("HUBKIT_KAGGLE_VENV", Path.home() / ".cache" / "hubkit" / "kaggle-venv"))


def prerequisites() -> Optional[str]:
    """Why kernels cannot run in a sandbox here, or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root on Linux (mount and network namespaces)"
    for tool in ("unshare", "mount", "ip"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    probe = subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare -m -n is refused here ({probe.stderr.decode().strip()})"
    return None


def build_image_venv(venv: Path = VENV) -> Path:
    """Build (or reuse) the image venv with kernels/image/make-venv.sh."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(["bash", str(MAKE_VENV), str(venv)], capture_output=True, text=True)
    if run.returncode != 0:
        tail = "\n".join(line for line in run.stderr.splitlines() if "is ignored: it is neither" not in line)
        raise RuntimeError(f"make-venv.sh failed:\n{tail[-3000:]}")
    return venv


@dataclass
class KernelRun:
    """What a sandboxed kernel left: its exit status, output, and the image's state after it."""

    returncode: int
    log: str
    working: Path
    pip_check: str
    freeze: dict[str, str]
    links: str


def freeze(venv: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a venv."""
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                         capture_output=True, text=True, check=True).stdout
    return _parse_freeze(out)


def _parse_freeze(text: str) -> dict[str, str]:
    from hubkit.kaggle.image import canonical_name

    pairs = (line.split("==", 1) for line in text.splitlines() if "==" in line)
    return {canonical_name(name): version for name, version in pairs}


def run_kernel(kernel: Path, inputs: dict[str, Path], tmp: Path, internet: bool, venv: Path = VENV,
               env: Optional[dict[str, str]] = None, timeout: float = 1800) -> KernelRun:
    """Execute ``kernel``'s notebook in the sandbox.

    Args:
        kernel: a folder with ``kernel-metadata.json`` and its notebook.
        inputs: mount path under ``/kaggle/input`` (``competitions/<slug>``, ``datasets/<owner>/<slug>``)
            -> host folder; mounted read-only.
        tmp: an empty host folder for ``working/``, the venv's overlay and the report.
        internet: False runs the kernel in a network namespace holding only loopback.
    """
    import json

    meta = json.loads((kernel / "kernel-metadata.json").read_text())
    working, report, upper, work = (tmp / n for n in ("working", "report", "upper", "overlay-work"))
    for folder in (working, report, upper, work):
        folder.mkdir(parents=True)
    Path("/kaggle").mkdir(exist_ok=True)  # an empty mount point; everything under it lives in the namespace
    q = shlex.quote
    lines = [
        "set -e",
        "mount --make-rprivate /",
        "mount -t tmpfs tmpfs /kaggle",
        "mkdir -p /kaggle/input /kaggle/working /kaggle/.report",
        f"mount --bind {q(str(working))} /kaggle/working",
        f"mount --bind {q(str(report))} /kaggle/.report",
    ]
    lines += [f"mkdir -p /kaggle/input/{q(rel)}" for rel in inputs]
    # The tree read-only first (a later bind of it would hide the datasets), then each dataset into it.
    lines += ["mount --bind /kaggle/input /kaggle/input", "mount -o remount,ro,bind /kaggle/input"]
    for rel, host in inputs.items():
        target = f"/kaggle/input/{q(rel)}"
        lines += [f"mount --bind {q(str(host))} {target}", f"mount -o remount,ro,bind {target}"]
    lines += [
        # A fresh image per kernel: what the kernel installs lands in a throwaway upper layer.
        f"mount -t overlay overlay -o lowerdir={q(str(venv))},upperdir={q(str(upper))},workdir={q(str(work))} "
        f"{q(str(venv))}",
        *([] if internet else ["ip link set lo up"]),
        "ip -o link show > /kaggle/.report/links.txt",
        "cd /kaggle/working",
        "set +e",
        f"python -m nbconvert --to notebook --execute --ExecutePreprocessor.timeout={int(timeout)} "
        f"--output-dir /kaggle/.report --output __notebook__.ipynb {q(str(kernel / meta['code_file']))} "
        "> /kaggle/.report/log.txt 2>&1",
        "status=$?",
        "python -m pip check > /kaggle/.report/pip-check.txt 2>&1",
        "python -m pip list --format=freeze > /kaggle/.report/freeze.txt 2>/dev/null",
        "exit $status",
    ]
    script = "\n".join(lines)
    path = f"{venv}/bin:/usr/local/bin:/usr/bin:/bin"
    clean = {"PATH": path, "HOME": str(tmp / "home"), "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1", **(env or {})}
    flags = ["-m"] if internet else ["-m", "-n"]
    run = subprocess.run(["unshare", *flags, "sh", "-c", script], env=clean, capture_output=True, text=True,
                         timeout=timeout + 300)
    read = lambda name: (report / name).read_text() if (report / name).is_file() else ""  # noqa: E731
    return KernelRun(run.returncode, read("log.txt") + run.stderr, working, read("pip-check.txt"),
                     _parse_freeze(read("freeze.txt")), read("links.txt"))
