"""Benchmark hubkit's slide reader against plain rasterio reads of the same TIFF, in one run.

Writes a zlib-tiled RGB TIFF of real tissue (the shared AIDPATH tiles, mirrored into a mosaic;
a synthetic drawing when they are absent), then reads every 1024 x 1024 window of it:

* full resolution: hubkit ``read(window)`` vs rasterio ``ds.read(window=...)``;
* 1/4 scale: hubkit ``read(window, scale=4)`` vs rasterio full-resolution read + cv2.resize
  (INTER_AREA), rasterio ``out_shape`` + ``Resampling.average``, and ``Resampling.nearest``.

Prints source megapixels per second and each one's ratio to hubkit.

    python bench/bench_slide.py               # 8192 x 8192
    python bench/bench_slide.py --size 16384  # the 16k x 16k case of the issue
"""

from __future__ import annotations

import os

# A small GDAL block cache, so no method reads tiles another one already decoded.
os.environ["GDAL_CACHEMAX"] = "64"

import argparse  # noqa: E402
import tempfile
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.windows import Window as RioWindow  # noqa: E402

from hubkit.inference.tiling import iter_windows  # noqa: E402
from hubkit.slides import (  # noqa: E402
    find_tile_pairs,
    open_slide,  # noqa: E402
    read_image,
    write_slide,  # noqa: E402
)
from hubkit.testbed.data import find_data_dir  # noqa: E402
from hubkit.testbed.mosaic import synthetic_slide  # noqa: E402


def tissue_image(size: int) -> np.ndarray:
    data = find_data_dir()
    pairs = find_tile_pairs(data / "aidpath-pas-glomeruli-1024") if data else []
    if pairs:
        tiles = [read_image(p) for p, _ in pairs[:16]]
        block = np.concatenate([np.concatenate(tiles[i : i + 4], axis=1) for i in range(0, 16, 4)], axis=0)
    else:
        block, _ = synthetic_slide((4096, 4096))
    reps = -(-size // block.shape[0])
    return np.tile(block, (reps, reps, 1))[:size, :size]


def timed(label: str, fn, windows, pixels: int, reference: float | None = None) -> float:
    t = time.perf_counter()
    for w in windows:
        fn(w)
    mpx = pixels / (time.perf_counter() - t) / 1e6
    ratio = f"  {mpx / reference:5.2f}x hubkit" if reference else ""
    print(f"  {label:52s} {mpx:8.1f} Mpx/s{ratio}")
    return mpx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--window", type=int, default=1024)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.tiff"
        write_slide(path, tissue_image(args.size), tile=512, compression="zlib")
        print(f"{args.size} x {args.size} zlib-tiled RGB TIFF, {path.stat().st_size / 1e6:.0f} MB; {args.window}-px windows")
        windows = list(iter_windows((args.size, args.size), args.window))
        pixels = len(windows) * args.window**2
        slide = open_slide(path)
        ds = rasterio.open(path)
        out = (args.window // 4, args.window // 4)

        def rio(w):
            return ds.read(window=RioWindow(w.col, w.row, w.width, w.height))

        print("full resolution")
        ours = timed("hubkit read(window)", slide.read, windows, pixels)
        timed("rasterio ds.read(window)  [band-first, no RGB copy]", rio, windows, pixels, ours)
        print("1/4 scale")
        ours = timed("hubkit read(window, scale=4)", lambda w: slide.read(w, scale=4), windows, pixels)
        timed("rasterio read + cv2.resize(INTER_AREA)",
              lambda w: cv2.resize(np.moveaxis(rio(w), 0, -1), out, interpolation=cv2.INTER_AREA), windows, pixels, ours)
        timed("rasterio out_shape, Resampling.average",
              lambda w: ds.read(window=RioWindow(w.col, w.row, w.width, w.height), out_shape=(3, *out),
                                resampling=Resampling.average), windows, pixels, ours)
        timed("rasterio out_shape, Resampling.nearest",
              lambda w: ds.read(window=RioWindow(w.col, w.row, w.width, w.height), out_shape=(3, *out),
                                resampling=Resampling.nearest), windows[: max(1, len(windows) // 8)],
              pixels // len(windows) * max(1, len(windows) // 8), ours)
        ds.close()
        slide.close()


if __name__ == "__main__":
    main()
