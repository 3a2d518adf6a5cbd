"""Split what a GPU run needs beside the checkout into parts that each travel in one device call.

A device call carries the checkout's tracked (and untracked, not ignored) files plus the ignored
paths it names, at most ``--budget-mib`` in all. When the tile set and the wheels do not fit beside
the checkout in one call, this script hard-links their files into ``.carry/part1 ... partN`` (first
fit, largest file first), each small enough to travel beside the checkout, and writes
``.carry/parts.json``. Call the machine once per part, back to back while it stays warm (each call
keeps the ignored parts the earlier ones left), naming ``.carry/partK`` (and ``.carry/parts.json``
in the last); the last call then runs ``python3 data_prep/device_parts.py --merge``, which checks
every part arrived and links its files back to their paths (``tiles/starter/...``, ``.whl/...``).

    python data_prep/device_parts.py tiles/starter .whl          # here: make the parts, print the calls
    python3 data_prep/device_parts.py --merge                    # there, in the last call
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARRY = Path(".carry")
MANIFEST = CARRY / "parts.json"


def travelling_bytes(root: Path = ROOT) -> int:
    """Bytes of the files every call carries: tracked, and untracked but not ignored."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=root, check=True, capture_output=True).stdout.split(b"\0")
    return sum((root / os.fsdecode(n)).stat().st_size for n in names if n and (root / os.fsdecode(n)).is_file())


def pack(root: Path, paths: list[str], capacity: int) -> list[list[tuple[str, int]]]:
    """First-fit-decreasing bins of the files under ``paths`` (relative to ``root``), each bin at most
    ``capacity`` bytes; each bin lists ``(path relative to root, bytes)``.

    Raises:
        SystemExit: a path that is not there, or a file larger than ``capacity``.
    """
    files = []
    for path in paths:
        top = root / path
        if not top.exists():
            sys.exit(f"{path}: not there")
        for file in sorted([top] if top.is_file() else top.rglob("*")):
            if file.is_file():
                files.append((file.relative_to(root).as_posix(), file.stat().st_size))
    bins: list[list[tuple[str, int]]] = []
    for name, size in sorted(files, key=lambda f: -f[1]):
        if size > capacity:
            sys.exit(f"{name}: {size / 2**20:.1f} MiB, more than one call can carry beside the checkout "
                     f"({capacity / 2**20:.1f} MiB)")
        fit = next((b for b in bins if sum(s for _, s in b) + size <= capacity), None)
        if fit is None:
            bins.append(fit := [])
        fit.append((name, size))
    return bins


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def make(root: Path, paths: list[str], budget_mib: float, margin_mib: float) -> None:
    checkout = travelling_bytes(root)
    capacity = int((budget_mib - margin_mib) * 2**20) - checkout
    if capacity <= 0:
        sys.exit(f"the checkout alone carries {checkout / 2**20:.1f} MiB of the {budget_mib:g} MiB a call takes")
    bins = pack(root, paths, capacity)
    shutil.rmtree(root / CARRY, ignore_errors=True)
    for k, files in enumerate(bins, start=1):
        for name, _ in files:
            link(root / name, root / CARRY / f"part{k}" / name)
    manifest = {"parts": [{"name": f"part{k}", "files": [name for name, _ in files]}
                          for k, files in enumerate(bins, start=1)]}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1))
    print(f"checkout {checkout / 2**20:.1f} MiB a call; {len(bins)} part(s) of at most {capacity / 2**20:.1f} MiB:")
    for k, files in enumerate(bins, start=1):
        extra = f', "{MANIFEST}"' if k == len(bins) else ""
        print(f"  call {k}: carry [\"{CARRY}/part{k}\"{extra}]  ({sum(s for _, s in files) / 2**20:.1f} MiB, "
              f"{len(files)} files)")
    print("  the last call's command begins: python3 data_prep/device_parts.py --merge && ...")


def merge(root: Path = ROOT) -> None:
    """Link every part's files back to their paths; fail naming the parts that did not arrive."""
    manifest = json.loads((root / MANIFEST).read_text())
    missing = [f"{part['name']} ({name})" for part in manifest["parts"] for name in part["files"]
               if not (root / CARRY / part["name"] / name).is_file()]
    if missing:
        sys.exit(f"{len(missing)} file(s) did not arrive, e.g. {missing[:3]}: the machine went back between calls "
                 "(a fresh one starts bare); call again with every part")
    for part in manifest["parts"]:
        for name in part["files"]:
            dst = root / name
            if dst.exists():
                dst.unlink()
            link(root / CARRY / part["name"] / name, dst)
    print(f"merged {sum(len(p['files']) for p in manifest['parts'])} files from {len(manifest['parts'])} part(s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="ignored files or folders the run needs (relative to the checkout)")
    ap.add_argument("--merge", action="store_true", help="on the device: put the parts' files back in place")
    ap.add_argument("--budget-mib", type=float, default=64.0, help="what one call carries in all (MiB)")
    ap.add_argument("--margin-mib", type=float, default=1.0, help="kept free in every call (MiB)")
    args = ap.parse_args()
    if args.merge:
        merge(ROOT)
    elif args.paths:
        make(ROOT, args.paths, args.budget_mib, args.margin_mib)
    else:
        ap.error("name the paths to split, or --merge")


if __name__ == "__main__":
    main()
