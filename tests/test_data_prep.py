"""data_prep/device_parts.py: the files a device run needs, split into parts that each travel beside
the checkout, and put back where they were on the other side."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("device_parts", REPO / "data_prep" / "device_parts.py")
device_parts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(device_parts)


def _tree(root: Path, sizes: dict) -> None:
    for name, size in sizes.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(bytes([len(name) % 251]) * size)


@pytest.mark.parametrize("sizes, capacity, parts", [
    ({"t/a": 60, "t/b": 50, "t/c": 40, "w/d": 30}, 100, 2),  # 60+40, 50+30
    ({"t/a": 100, "t/b": 100}, 100, 2),  # a file as large as a part travels alone
    ({"t/a": 10, "t/b": 10, "t/c": 10}, 1000, 1),
    ({f"t/{i}": 34 for i in range(9)}, 100, 5),  # two a part, the ninth alone
])
def test_every_file_travels_once_in_a_part_that_fits(tmp_path, sizes, capacity, parts):
    _tree(tmp_path, sizes)
    bins = device_parts.pack(tmp_path, sorted({name.split("/")[0] for name in sizes}), capacity)
    assert len(bins) == parts
    assert all(sum(size for _, size in part) <= capacity for part in bins)
    assert sorted(name for part in bins for name, _ in part) == sorted(sizes)


@pytest.mark.parametrize("sizes, paths, message", [
    ({"t/a": 101}, ["t"], "t/a: 0.0 MiB, more than one call can carry"),
    ({"t/a": 1}, ["t", "nothere"], "nothere: not there"),
])
def test_what_cannot_travel_is_named(tmp_path, sizes, paths, message):
    _tree(tmp_path, sizes)
    with pytest.raises(SystemExit, match=message):
        device_parts.pack(tmp_path, paths, 100)


def test_parts_made_here_merge_back_there_and_a_lost_part_is_named(tmp_path, capsys):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("/tiles/\n/.whl/\n/.carry/\n")
    (tmp_path / "tracked.txt").write_bytes(b"x" * 1000)
    sizes = {f"tiles/set/images/{i}.jpg": 300_000 + i for i in range(8)} | {".whl/a.whl": 500_000}
    _tree(tmp_path, sizes)
    device_parts.make(tmp_path, ["tiles/set", ".whl"], budget_mib=1.0, margin_mib=0.0)
    assert "4 part(s)" in capsys.readouterr().out  # 0.5 + 0.3 MB, 3 x 0.3, 3 x 0.3, 0.3: 1 MiB less the checkout
    there = tmp_path / "there"  # the device's copy: the checkout and the parts, not the files
    subprocess.run(["git", "init", "-q", str(there)], check=True)
    for name in [".carry/parts.json", *(str(p.relative_to(tmp_path)) for p in (tmp_path / ".carry").rglob("*")
                                        if p.is_file())]:
        (there / name).parent.mkdir(parents=True, exist_ok=True)
        (there / name).write_bytes((tmp_path / name).read_bytes())
    device_parts.merge(there)
    assert all((there / name).read_bytes() == (tmp_path / name).read_bytes() for name in sizes)
    for file in [f for f in (there / ".carry" / "part2").rglob("*") if f.is_file()]:
        file.unlink()
    with pytest.raises(SystemExit, match=r"file\(s\) did not arrive, e.g. \['part2 .*call again with every part"):
        device_parts.merge(there)


def _repo(root: Path, sizes: dict) -> None:
    """A git repository at ``root`` with ``sizes``' files committed."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    _tree(root, sizes)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "t"],
                   cwd=root, check=True)


@pytest.mark.parametrize("park, travelling", [
    ([], 1000 + 300 + 200),
    (["models"], 1000),  # both folders of models/ stay behind
    (["models/folds"], 1000 + 200),
    (["models/folds/", "models/folds"], 1000 + 200),  # one path, however written, parks once
])
def test_parked_folders_stay_behind_and_come_back(tmp_path, park, travelling):
    """The repository-only models (137 MB) do not fit a device call beside the tiles: parked, they do not
    travel, their files stay, and unparking leaves git's index and exclude file as they were."""
    _repo(tmp_path, {"hubkit/a.py": 1000, "models/folds/w": 300, "models/starter/w": 200})
    exclude = tmp_path / ".git" / "info" / "exclude"
    before = exclude.read_text()
    device_parts.park(tmp_path, park)
    device_parts.park(tmp_path, park)  # a second run of the same command changes nothing
    assert device_parts.travelling_bytes(tmp_path) == travelling
    assert all((tmp_path / name).is_file() for name in ("models/folds/w", "models/starter/w"))
    assert device_parts.unpark(tmp_path) == list(dict.fromkeys(path.strip("/") for path in park))
    assert device_parts.travelling_bytes(tmp_path) == 1500
    assert exclude.read_text() == before
    status = subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True)
    assert status.stdout == ""


def test_only_tracked_paths_are_parked(tmp_path):
    _repo(tmp_path, {"hubkit/a.py": 10})
    with pytest.raises(SystemExit, match="nothere: git tracks no file there"):
        device_parts.park(tmp_path, ["nothere"])
    assert device_parts.parked(tmp_path) == []


def test_training_needs_none_of_the_packages_the_device_wheels_leave_out():
    """train_folds.sh runs `hubkit train / soup / validate` on the device with device-wheels.txt, which
    leaves out rasterio (39 MB with GDAL), imagecodecs and dask: importing what those commands run must
    not need them."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'rasterio', 'imagecodecs', 'dask', 'distributed'}:\n"
        "            raise ImportError(f'{name} is not on the device')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import hubkit.cli.main, hubkit.training.loop, hubkit.training.validate, hubkit.models.soup\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    wheels = (REPO / "data_prep" / "device-wheels.txt").read_text()
    assert "rasterio" not in [line.split("==")[0] for line in wheels.splitlines()]
