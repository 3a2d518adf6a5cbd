import numpy as np
import pytest

from hubkit._io import atomic_write, write_image
from hubkit.errors import OutputError
from hubkit.slides import read_image


class Boom(Exception):
    pass


@pytest.mark.parametrize("fault", [Boom, KeyboardInterrupt, OSError])
def test_a_write_that_fails_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path, fault):
    path = tmp_path / "out.csv"
    path.write_text("old")
    raised = OutputError if fault is OSError else fault
    with pytest.raises(raised) as info:
        with atomic_write(path) as f:
            f.write("new, half")
            raise fault(28, "No space left on device") if fault is OSError else fault()
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    if fault is OSError:
        assert "out.csv: cannot write (No space left on device)" in str(info.value)


def test_a_finished_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    with atomic_write(path) as f:
        f.write("é\n")
    assert path.read_bytes() == "é\n".encode() and oct(path.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("name, ok", [("a.png", True), ("a.jpg", True), ("a.xyz", False), ("a", False)])
def test_write_image_by_suffix_or_a_named_error(tmp_path, name, ok):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255
    if ok:
        write_image(tmp_path / name, rgb)
        assert read_image(tmp_path / name)[..., 0].min() > 240  # red stays red (RGB in, RGB out)
    else:
        with pytest.raises(OutputError, match="cannot encode a picture"):
            write_image(tmp_path / name, rgb)
        assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_is_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="file/a.png: cannot write"):
        write_image(tmp_path / "file" / "a.png", np.zeros((4, 4, 3), np.uint8))
