import threading

import numpy as np
import pytest
import rasterio
import tifffile

from hubkit.errors import SlideError
from hubkit.slides import InMemorySlide, as_rgb, open_slide, scaled_size, write_slide


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (301, 517, 3), dtype=np.uint8)


def _write_interleaved(path, rgb):
    tifffile.imwrite(path, rgb, tile=(128, 128), compression="zlib", photometric="rgb")


def _write_planar(path, rgb):
    tifffile.imwrite(path, np.moveaxis(rgb, -1, 0), planarconfig="separate", photometric="rgb")


def _write_bigtiff(path, rgb):
    tifffile.imwrite(path, rgb, bigtiff=True, tile=(64, 64), photometric="rgb")


def _write_leading_axes(path, rgb):
    tifffile.imwrite(path, rgb[None, None], tile=(128, 128), photometric="rgb")


def _write_pages(path, rgb):
    write_slide(path, rgb, layout="pages", tile=128)


def _write_rasterio_rgba(path, rgb):
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    bands = np.concatenate([np.moveaxis(rgb, -1, 0), alpha[None]])
    with rasterio.open(path, "w", driver="GTiff", width=rgb.shape[1], height=rgb.shape[0], count=4, dtype="uint8",
                       tiled=True, blockxsize=128, blockysize=128) as ds:
        ds.write(bands)


def _write_grey(path, rgb):
    tifffile.imwrite(path, rgb[..., 1], tile=(128, 128))


LAYOUTS = [
    # (writer, backends that must read it, expected image from rgb)
    ("interleaved", _write_interleaved, ["rasterio", "tifffile"], lambda a: a),
    ("planar", _write_planar, ["rasterio", "tifffile"], lambda a: a),
    ("bigtiff", _write_bigtiff, ["rasterio", "tifffile"], lambda a: a),
    ("leading-1-axes", _write_leading_axes, ["rasterio", "tifffile"], lambda a: a),
    ("one-band-per-page", _write_pages, ["rasterio", "tifffile"], lambda a: a),
    ("rgba", _write_rasterio_rgba, ["rasterio", "tifffile"], lambda a: a),
    ("grey", _write_grey, ["rasterio", "tifffile"], lambda a: np.repeat(a[..., 1:2], 3, axis=-1)),
]


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _garble(data: bytes) -> bytes:
    # tifffile writes the tile index first, so the tail is tile data: zero it
    return data[: len(data) // 2] + b"\x00" * (len(data) - len(data) // 2)


SVS = [
    # (file, level shapes, mean RGB of the whole slide at 1/8, read with)
    ("cmu_small_region.svs", [(2967, 2220)]),
    ("tcga-cr-7395-01a-01-ts1.svs", [(3567, 4443), (1783, 2221)]),
]


@pytest.mark.parametrize("name, writer, backends, expect", LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_every_layout_reads_the_same_pixels(tmp_path, rgb, name, writer, backends, expect):
    path = tmp_path / f"{name}.tiff"
    writer(path, rgb)
    truth = InMemorySlide(expect(rgb))
    for backend in backends:
        with open_slide(path, backend=backend) as slide:
            assert slide.shape == (301, 517)
            for window, scale in [((0, 0, 301, 517), 1), ((13, 200, 100, 250), 1), ((-20, 480, 64, 64), 1),
                                  ((0, 0, 301, 517), 4), ((7, 9, 200, 200), 2.5)]:
                got = slide.read(window, scale=scale, fill=9)
                assert np.array_equal(got, truth.read(window, scale=scale, fill=9)), (backend, window, scale)


def test_pages_layout_is_detected(tmp_path, rgb):
    _write_pages(tmp_path / "p.tiff", rgb)
    with rasterio.open(tmp_path / "p.tiff") as ds:
        assert ds.count != 3  # the layout rasterio users trip over
    slide = open_slide(tmp_path / "p.tiff", backend="rasterio")
    assert slide.layout == "pages"
    assert np.array_equal(slide.read((0, 0, 301, 517)), rgb)


def test_boundless_read_pads_with_fill():
    image = np.full((10, 10, 3), 100, np.uint8)
    out = InMemorySlide(image).read((-2, 8, 5, 5), fill=255)
    assert out.shape == (5, 5, 3)
    assert (out[:2] == 255).all() and (out[:, 2:] == 255).all()
    assert (out[2:, :2] == 100).all()


@pytest.mark.parametrize("n, scale, expected", [(1024, 4, 256), (18484, 3, 6161), (10, 4, 3), (1, 8, 1), (7, 1, 7)])
def test_scaled_size(n, scale, expected):
    assert scaled_size(n, scale) == expected


def test_downscaled_read_is_area_average():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:4, :4] = 200  # top-left 4x4 block
    out = InMemorySlide(image).read((0, 0, 8, 8), scale=4)
    assert out.shape == (2, 2, 3)
    assert out[0, 0, 0] == 200 and out[1, 1, 0] == 0


def test_pyramid_levels_are_used_for_downscaled_reads(tmp_path, rgb):
    big = np.kron(rgb[:128, :128], np.ones((8, 8, 1), np.uint8))  # 1024 x 1024, blocky
    path = write_slide(tmp_path / "pyr.tiff", big, tile=256, overviews=(2, 4))
    for backend in ("rasterio", "tifffile"):
        slide = open_slide(path, backend=backend)
        assert slide.level_shapes == [(1024, 1024), (512, 512), (256, 256)]
        assert slide._pick_level(1) == 0 and slide._pick_level(3) == 1 and slide._pick_level(8) == 2
        got = slide.read((0, 0, 1024, 1024), scale=8)
        assert np.array_equal(got, rgb[:128, :128])  # blocks of 8 average to the original pixels


def test_thumbnail_equals_a_whole_downscaled_read(rgb):
    slide = InMemorySlide(rgb)
    for scale in (1, 3, 16):
        assert np.array_equal(slide.thumbnail(scale), slide.read((0, 0, 301, 517), scale=scale))


def test_threads_reading_concurrently_get_the_right_pixels(tmp_path, rgb):
    path = write_slide(tmp_path / "t.tiff", rgb, tile=64)
    slide = open_slide(path)
    windows = [(r, c, 64, 64) for r in range(0, 301, 37) for c in range(0, 517, 53)]
    errors = []

    def work(offset):
        for window in windows[offset::4]:
            r, c, h, w = window
            got = slide.read(window)
            want = np.zeros((h, w, 3), np.uint8)
            part = rgb[r : r + h, c : c + w]
            want[: part.shape[0], : part.shape[1]] = part
            if not np.array_equal(got, want):
                errors.append(window)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(slide._handles._all) == 4  # one GDAL handle per thread
    slide.close()


def test_missing_file(tmp_path):
    with pytest.raises(SlideError, match="no such file"):
        open_slide(tmp_path / "nope.tiff")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.tiff"
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    with pytest.raises(SlideError, match=r"corrupt\.tiff.*corrupt or truncated"):
        open_slide(path)


@pytest.mark.parametrize("damage", [_truncate, _garble], ids=["truncated", "garbled"])
@pytest.mark.parametrize("backend", ["rasterio", "tifffile"])
def test_damaged_file_fails_on_read_with_the_file_named(tmp_path, rgb, backend, damage):
    path = tmp_path / "good.tiff"
    tifffile.imwrite(path, rgb, tile=(64, 64), compression="zlib", photometric="rgb")
    bad = tmp_path / "damaged.tiff"
    bad.write_bytes(damage(path.read_bytes()))
    slide = open_slide(bad, backend=backend)
    assert np.array_equal(slide.read((0, 0, 64, 64)), rgb[:64, :64])  # the intact part still reads
    with pytest.raises(SlideError, match=r"damaged\.tiff: .*(truncated|corrupt)"):
        slide.read((0, 0, 301, 517))


def test_wrong_band_count(tmp_path):
    path = tmp_path / "five.tiff"
    with rasterio.open(path, "w", driver="GTiff", width=32, height=16, count=5, dtype="uint8") as ds:
        ds.write(np.zeros((5, 16, 32), np.uint8))
    with pytest.raises(SlideError, match=r"five\.tiff: unsupported band layout: 5 bands"):
        open_slide(path)


def test_16_bit_slide_is_refused(tmp_path):
    path = tmp_path / "deep.tiff"
    tifffile.imwrite(path, np.zeros((16, 16, 3), np.uint16), photometric="rgb")
    with pytest.raises(SlideError, match=r"deep\.tiff: pixels are uint16"):
        open_slide(path)


@pytest.mark.parametrize(
    "window, scale, message",
    [
        ((400, 0, 10, 10), 1, "outside the image"),
        ((0, -50, 10, 10), 1, "outside the image"),
        ((0, 0, 0, 10), 1, "size must be positive"),
        ((0, 0, 10, 10), 0.5, "scale is a downscale factor"),
    ],
)
def test_bad_windows(rgb, window, scale, message):
    with pytest.raises((SlideError, ValueError), match=message):
        InMemorySlide(rgb, name="mem").read(window, scale=scale)


@pytest.mark.parametrize(
    "shape, ok",
    [((5, 6), True), ((5, 6, 3), True), ((5, 6, 4), True), ((3, 5, 6), True), ((1, 1, 5, 6, 3), True), ((5, 6, 2), False)],
)
def test_as_rgb_layouts(shape, ok):
    a = np.zeros(shape, np.uint8)
    if ok:
        assert as_rgb(a).shape == (5, 6, 3)
    else:
        with pytest.raises(SlideError, match="unsupported band layout"):
            as_rgb(a)


@pytest.mark.parametrize("name, levels", SVS)
def test_real_svs_windows_match_tifffile(data_dir, name, levels):
    path = data_dir / "wsi-samples" / name
    reference = tifffile.imread(path, series=0, level=0)
    with open_slide(path) as slide:
        assert slide.level_shapes == levels
        window = slide.read((1000, 1000, 512, 512))
        assert np.array_equal(window, reference[1000:1512, 1000:1512])
        thumb = slide.thumbnail(8)
        assert thumb.shape == (scaled_size(levels[0][0], 8), scaled_size(levels[0][1], 8), 3)
        # downscaled from level 1 where the file has one, from level 0 otherwise: both close to the truth
        expected = InMemorySlide(reference).read((0, 0, *levels[0]), scale=8)
        # (read block by block from a level 2.0005x smaller: block edges land a fraction of a pixel off)
        assert np.abs(thumb.astype(int) - expected).mean() < 5


def test_cmu_svs_via_rasterio_too(data_dir):
    path = data_dir / "wsi-samples" / "cmu_small_region.svs"
    a = open_slide(path, backend="rasterio").read((100, 200, 300, 300))
    b = open_slide(path, backend="tifffile").read((100, 200, 300, 300))
    assert np.abs(a.astype(int) - b).max() <= 2  # two JPEG decoders


@pytest.mark.parametrize(
    "name, content",
    [
        ("vrt.tiff", b'<VRTDataset rasterXSize="10" rasterYSize="10"><VRTRasterBand dataType="Byte" band="1">'),
        ("curl.tiff", b"/vsicurl/http://example.com/slide.tiff"),
        ("image.tiff", b"\x89PNG\r\n\x1a\n" + bytes(32)),
        ("empty.tiff", b""),
    ],
)
def test_files_that_are_not_tiffs_never_reach_gdal(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SlideError, match="not a slide hubkit reads .*readable kinds: aperio-svs.*tiff"):
        open_slide(path)


@pytest.mark.parametrize("compression, name, backend", [
    (None, "tiff", "rasterio"),
    ("lzw", "tiff", "rasterio"),
    ("jpeg", "tiff", "rasterio"),
    ("zlib", "tiff-deflate", "tifffile"),  # tifffile checks each tile's Adler-32; libtiff does not
])
def test_the_probe_that_matched_is_named(tmp_path, rgb, compression, name, backend):
    from hubkit.slides import probe

    path = write_slide(tmp_path / "s.tiff", rgb, compression=compression)
    assert (probe(path).name, probe(path).backend) == (name, backend)


def _corrupt_deflate_tile(path, rgb):
    """A deflate TIFF whose second tile has one flipped byte that libtiff inflates without complaint."""
    tifffile.imwrite(path, rgb, tile=(128, 128), compression="zlib", photometric="rgb")
    with tifffile.TiffFile(path) as tf:
        offset, count = tf.pages[0].dataoffsets[1], tf.pages[0].databytecounts[1]
    data = bytearray(path.read_bytes())
    for k in range(offset + 2, offset + count - 4, 97):  # the first flip GDAL decodes to other pixels
        trial = bytearray(data)
        trial[k] ^= 0x10
        path.write_bytes(bytes(trial))
        try:
            with open_slide(path, backend="rasterio") as slide:
                if not np.array_equal(slide.read((0, 0, 128, 256)), rgb[:128, :256]):
                    return path
        except SlideError:
            continue
    raise AssertionError("no silent corruption found to test with")


def test_a_corrupt_deflate_tile_is_an_error_not_garbage(tmp_path):
    rgb = (np.random.default_rng(3).integers(0, 4, (256, 256, 3)) * 64).astype(np.uint8)
    path = _corrupt_deflate_tile(tmp_path / "bad.tiff", rgb)  # GDAL reads it as other pixels
    with open_slide(path) as slide:
        assert slide.read((0, 0, 128, 128)).shape == (128, 128, 3)  # the intact tile still reads
        with pytest.raises(SlideError, match=r"bad.tiff: failed to read window .*(Deflate|zlib|checksum)"):
            slide.read((0, 0, 128, 256))


def _pages(path, dtypes):
    rng = np.random.default_rng(0)
    with tifffile.TiffWriter(path) as tw:
        for dtype in dtypes:
            tw.write(rng.integers(0, 255, (64, 64)).astype(dtype), photometric="minisblack", tile=(32, 32))
    return path


@pytest.mark.parametrize("backend", ["rasterio", "tifffile"])
@pytest.mark.parametrize("dtypes, page", [
    (("uint8", "uint16", "uint8"), 2),
    (("uint8", "uint8", "float32"), 3),
])
def test_every_page_of_a_one_band_per_page_slide_must_be_8_bit(tmp_path, backend, dtypes, page):
    path = _pages(tmp_path / "pages.tiff", dtypes)
    with pytest.raises(SlideError, match=f"pages.tiff: page {page}'s pixels are {dtypes[page - 1]}"):
        open_slide(path, backend=backend)


@pytest.mark.parametrize("backend", ["rasterio", "tifffile"])
@pytest.mark.parametrize("scale", [1, 257], ids=["8-bit-map", "16-bit-map"])
def test_palette_slides_read_through_their_colour_map(tmp_path, backend, scale):
    rng = np.random.default_rng(5)
    lut = rng.integers(0, 256, (256, 3)).astype(np.uint8)
    index = rng.integers(0, 256, (96, 80)).astype(np.uint8)
    path = tmp_path / "palette.tiff"
    tifffile.imwrite(path, index, photometric="palette", colormap=lut.T.astype(np.uint16) * scale, tile=(32, 32))
    with open_slide(path, backend=backend) as slide:
        assert slide.colour == "rgb"
        assert np.array_equal(slide.read((0, 0, 96, 80)), lut[index])


@pytest.mark.parametrize("backend", ["rasterio", "tifffile"])
def test_grey_slides_say_so(tmp_path, rgb, backend):
    _write_grey(tmp_path / "g.tiff", rgb)
    with open_slide(tmp_path / "g.tiff", backend=backend) as slide:
        assert slide.colour == "grey"
    with open_slide(_write_pages_path(tmp_path, rgb), backend=backend) as slide:
        assert slide.colour == "rgb"


@pytest.mark.parametrize("image, colour", [
    (np.zeros((8, 8), np.uint8), "grey"),
    (np.zeros((8, 8, 1), np.uint8), "grey"),
    (np.zeros((1, 8, 8), np.uint8), "grey"),
    (np.zeros((8, 8, 3), np.uint8), "rgb"),
    (np.zeros((1, 8, 3), np.uint8), "rgb"),
    (np.zeros((8, 8, 4), np.uint8), "rgb"),
])
def test_in_memory_slides_know_their_colour(image, colour):
    assert InMemorySlide(image).colour == colour


def _write_pages_path(tmp_path, rgb):
    path = tmp_path / "p.tiff"
    _write_pages(path, rgb)
    return path
