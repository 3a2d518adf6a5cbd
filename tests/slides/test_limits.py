import pytest
import rasterio

from hubkit.errors import ConfigError, SlideError
from hubkit.slides import open_slide
from hubkit.slides.limits import ENV_MAX_EXPANSION, ENV_MAX_PIXELS, SlideLimits, check_declared


def _sparse_tiff(path, height, width):
    """A deflate TIFF that declares ``height x width`` RGB pixels and stores no tile (GDAL's SPARSE_OK)."""
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8", tiled=True,
                       blockxsize=4096, blockysize=4096, compress="deflate", sparse_ok=True, BIGTIFF="YES"):
        pass
    return path


@pytest.mark.parametrize("shape, file_bytes, limits, message", [
    ((40_000, 50_000), 500_000_000, SlideLimits(), None),  # HuBMAP's largest, as stored
    ((40_000, 50_000), 500_000, SlideLimits(), "times more than it holds"),  # the same, in 500 KB
    ((10**6, 10**6), 10**12, SlideLimits(), "over the limit of 34,359,738,368"),
    ((1000, 1000), 10**6, SlideLimits(max_pixels=999_999), "over the limit of 999,999"),
    ((1000, 1000), 1000, SlideLimits(max_expansion=2_999), "times more than it holds"),
    ((1000, 1000), 1000, SlideLimits(max_expansion=3_000), None),
])
def test_declared_sizes_are_held_to_the_limits(shape, file_bytes, limits, message):
    if message is None:
        check_declared("s.tiff", shape, file_bytes, limits)
    else:
        with pytest.raises(SlideError, match=f"s.tiff: .*{message}"):
            check_declared("s.tiff", shape, file_bytes, limits)


@pytest.mark.parametrize("height, width, message", [
    (200_000, 200_000, f"over the limit.*{ENV_MAX_PIXELS}"),  # 4e10 px
    (40_000, 40_000, f"sparse or forged.*{ENV_MAX_EXPANSION}"),  # 1.6e9 px in a few KB
])
def test_a_tiny_file_declaring_a_huge_slide_is_refused_at_open(tmp_path, height, width, message):
    path = _sparse_tiff(tmp_path / "bomb.tiff", height, width)
    assert path.stat().st_size < 200_000
    with pytest.raises(SlideError, match=f"bomb.tiff: declares {height} x {width}.*{message}"):
        open_slide(path)


def test_the_limits_can_be_lifted_for_a_real_slide(tmp_path, monkeypatch):
    path = _sparse_tiff(tmp_path / "sparse.tiff", 40_000, 40_000)
    with open_slide(path, limits=SlideLimits(max_expansion=1e9)) as slide:
        assert slide.shape == (40_000, 40_000)
    monkeypatch.setenv(ENV_MAX_EXPANSION, "1e9")
    with open_slide(path) as slide:
        assert slide.shape == (40_000, 40_000)


@pytest.mark.parametrize("env, expected", [
    ({}, SlideLimits()),
    ({ENV_MAX_PIXELS: "1e10"}, SlideLimits(max_pixels=10**10)),
    ({ENV_MAX_PIXELS: " 5000 ", ENV_MAX_EXPANSION: "20000"}, SlideLimits(max_pixels=5000, max_expansion=20000.0)),
    ({ENV_MAX_PIXELS: ""}, SlideLimits()),
    ({ENV_MAX_PIXELS: "lots"}, f"{ENV_MAX_PIXELS}='lots': not a number"),
    ({ENV_MAX_EXPANSION: "0"}, "must be a finite number > 0"),
    ({ENV_MAX_EXPANSION: "nan"}, "must be a finite number > 0"),
    ({ENV_MAX_PIXELS: "inf"}, "must be a finite number > 0"),
])
def test_limits_from_the_environment(env, expected):
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=expected):
            SlideLimits.from_env(env)
    else:
        assert SlideLimits.from_env(env) == expected
