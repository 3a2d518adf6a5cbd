"""Split what a GPU run needs beside the checkout into parts that each travel in one device call.

A device call carries the checkout's tracked (and untracked, not ignored) files plus the ignored
paths it names, at most ``--budget-mib`` in all. When the tile set and the wheels do not fit beside
the checkout in one call, this script hard-links their files into ``.carry/part1 ... partN`` (first
fit, largest file first), each small enough to travel beside the checkout, and writes
``.carry/parts.json``. Call the machine once per part, back to back while it stays warm (each call
keeps the ignored parts the earlier ones left), naming ``.carry/partK`` (and ``.carry/parts.json``
in the last); the last call then runs ``python3 data_prep/device_parts.py --merge``, which checks
every part arrived and links its files back to their paths (``tiles/starter/...``, ``.whl/...``).

Tracked folders the run does not need (``models/``: the repository-only weights, 137 MB, more than a
call carries) can stay behind: ``--park models`` takes them out of git's index and ignores them in
``.git/info/exclude``, so they neither travel nor count, while their files stay where they are;
``--unpark`` puts the index and the exclude file back as they were (do it before committing).

    python data_prep/device_parts.py tiles/starter .whl --park models   # here: make the parts, print the calls
    python3 data_prep/device_parts.py --merge                          # there, in the last call
    python data_prep/device_parts.py --unpark                           # here, after the calls
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
PARKED = "# device_parts --park: "  # the exclude file's lines that park a path start so


def _git(root: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True).stdout


def _exclude(root: Path) -> Path:
    return root / os.fsdecode(_git(root, "rev-parse", "--git-path", "info/exclude").strip())


def travelling_bytes(root: Path = ROOT) -> int:
    """Bytes of the files every call carries: tracked, and untracked but not ignored."""
    names = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split(b"\0")
    return sum((root / os.fsdecode(n)).stat().st_size for n in names if n and (root / os.fsdecode(n)).is_file())


def parked(root: Path = ROOT) -> list[str]:
    """The paths `park` left out of the index, as the exclude file records them."""
    exclude = _exclude(root)
    lines = exclude.read_text().splitlines() if exclude.is_file() else []
    return [line[len(PARKED):] for line in lines if line.startswith(PARKED)]


def park(root: Path, paths: list[str]) -> None:
    """Keep tracked ``paths`` (relative to ``root``) from travelling: out of the index (their files stay on
    disk) and ignored, each recorded in the exclude file for `unpark`. A path parked already stays so.

    Raises:
        SystemExit: a path that git does not track.
    """
    already = parked(root)
    paths = [path for path in dict.fromkeys(p.strip("/") for p in paths) if path not in already]
    for path in paths:
        if not _git(root, "ls-files", "--", path).strip():
            sys.exit(f"{path}: git tracks no file there; only tracked paths are parked")
    exclude = _exclude(root)
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a") as out:
        for path in paths:
            _git(root, "rm", "-r", "-q", "--cached", "--", path)
            out.write(f"{PARKED}{path}\n/{path}/\n")


def unpark(root: Path = ROOT) -> list[str]:
    """Put every parked path back in the index (as HEAD has it) and drop its lines from the exclude file;
    returns the paths."""
    paths = parked(root)
    if not paths:
        return []
    _git(root, "reset", "-q", "--", *paths)
    exclude = _exclude(root)
    lines, skip = [], False
    for line in exclude.read_text().splitlines():
        if skip:  # the ignore pattern written after the marker
            skip = False
        elif line.startswith(PARKED):
            skip = True
        else:
            lines.append(line)
    exclude.write_text("".join(f"{line}\n" for line in lines))
    return paths


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
        sys.exit(f"the checkout alone carries {checkout / 2**20:.1f} MiB of the {budget_mib:g} MiB a call takes: "
                 "--park the tracked folders the run does not need (e.g. models)")
    bins = pack(root, paths, capacity)
    shutil.rmtree(root / CARRY, ignore_errors=True)
    for k, files in enumerate(bins, start=1):
        for name, _ in files:
            link(root / name, root / CARRY / f"part{k}" / name)
    manifest = {"parts": [{"name": f"part{k}", "files": [name for name, _ in files]}
                          for k, files in enumerate(bins, start=1)]}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1))
    if away := parked(root):
        print(f"parked (not travelling; --unpark after the calls): {', '.join(away)}")
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
    ap.add_argument("--park", action="append", default=[], metavar="PATH",
                    help="a tracked folder the run does not need: kept out of the calls (repeatable)")
    ap.add_argument("--unpark", action="store_true", help="here, after the calls: put the parked paths back")
    ap.add_argument("--budget-mib", type=float, default=64.0, help="what one call carries in all (MiB)")
    ap.add_argument("--margin-mib", type=float, default=1.0, help="kept free in every call (MiB)")
    args = ap.parse_args()
    if args.merge:
        merge(ROOT)
    elif args.unpark:
        print(f"back in the index: {', '.join(unpark(ROOT)) or 'nothing was parked'}")
    elif args.paths:
        park(ROOT, args.park)
        make(ROOT, args.paths, args.budget_mib, args.margin_mib)
    else:
        ap.error("name the paths to split, or --merge, or --unpark")


if __name__ == "__main__":
    main()
