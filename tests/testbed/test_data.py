"""The real tissue that ships with hubkit: present, checked, and refused by name when damaged."""

import shutil

import pytest

from hubkit.errors import MissingInputError
from hubkit.slides import find_tile_pairs, read_mask
from hubkit.testbed import SAMPLE_TILES, STARTER_HELD_OUT, sample_tiles_dir


def test_the_shipped_tiles_are_real_held_out_pairs_with_glomeruli():
    pairs = find_tile_pairs(sample_tiles_dir())
    assert [image.stem for image, _ in pairs] == ["train_080", "train_081", "train_092", "train_093", "train_094"]
    first, last = STARTER_HELD_OUT
    assert all(first <= image.stem <= last for image, _ in pairs)  # never trained on by the shipped models
    for _, mask in pairs:
        m = read_mask(mask)
        assert m.shape == (1200, 1600) and 0.01 < m.mean() < 0.2
    assert "MIT" in (SAMPLE_TILES / "SOURCE.md").read_text()


def _damage_byte(folder):
    path = folder / "images" / "train_081.jpg"
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "masks" / "train_092.png").unlink(), "train_092.png: missing sample tile file"),
    (_damage_byte, "train_081.jpg: sha256 differs"),
    (lambda f: (f / "SHA256SUMS.csv").unlink(), "SHA256SUMS.csv: missing"),
    (lambda f: (f / "SHA256SUMS.csv").write_text("path,sha256\nimages/../../x.jpg,00\n"), "missing sample tile file"),
    (lambda f: (f / "SHA256SUMS.csv").write_text("path,sha256\n/etc/hostname,00\n"), "missing sample tile file"),
])
def test_a_damaged_install_is_refused_naming_the_file(tmp_path, damage, message):
    folder = tmp_path / "sample"
    shutil.copytree(SAMPLE_TILES, folder)
    for p in folder.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    damage(folder)
    with pytest.raises(MissingInputError, match=message):
        sample_tiles_dir(folder)
