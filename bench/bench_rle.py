"""Benchmark hubkit.formats.rle against the codecs Kaggle kernels use, on one large synthetic mask.

Prints, for encode, decode and window decode: wall time, the speed ratio against the baseline run
in the same process, and the peak extra memory (tracemalloc, which sees numpy's buffers) as a
fraction of the mask's size.

    python bench/bench_rle.py                 # ~1 Gpx mask (25,000 x 40,000), ~3% foreground, 200 blobs
    python bench/bench_rle.py --height 5000 --width 8000   # quicker
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import cv2
import numpy as np

from hubkit.formats import rle


def kaggle_encode(img: np.ndarray) -> str:
    """The encoder most HuBMAP kernels copied."""
    pixels = img.T.flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def kaggle_decode(mask_rle: str, shape: tuple[int, int]) -> np.ndarray:
    """The decoder most HuBMAP kernels copied (``shape`` is (height, width))."""
    s = mask_rle.split()
    starts, lengths = [np.asarray(x, dtype=int) for x in (s[0:][::2], s[1:][::2])]
    starts -= 1
    ends = starts + lengths
    img = np.zeros(shape[0] * shape[1], dtype=np.uint8)
    for lo, hi in zip(starts, ends):
        img[lo:hi] = 1
    return img.reshape(shape[1], shape[0]).T


def make_mask(height: int, width: int, blobs: int, fraction: float, seed: int = 0) -> np.ndarray:
    """``blobs`` filled ellipses covering about ``fraction`` of a (height, width) uint8 mask."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    radius = np.sqrt(fraction * height * width / blobs / np.pi)
    for _ in range(blobs):
        r, c = int(rng.integers(0, height)), int(rng.integers(0, width))
        axes = (int(radius * rng.uniform(0.8, 1.25)), int(radius * rng.uniform(0.8, 1.25)))
        cv2.ellipse(mask, (c, r), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask


def measure(fn, *args, repeat: int = 1):
    """(result, seconds, peak extra bytes) of ``fn(*args)``.

    Timed as the best of ``repeat`` calls (the first call after a large free can pay the kernel's
    page faults), then traced in one more: tracemalloc slows every Python allocation.
    """
    seconds = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args)
        seconds = min(seconds, time.perf_counter() - t)
        del out
    tracemalloc.start()
    out = fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=25_000)
    ap.add_argument("--width", type=int, default=40_000)
    ap.add_argument("--blobs", type=int, default=200)
    ap.add_argument("--fraction", type=float, default=0.03)
    args = ap.parse_args()

    mask = make_mask(args.height, args.width, args.blobs, args.fraction)
    shape = mask.shape
    size = mask.nbytes
    print(f"mask {shape[0]} x {shape[1]} = {size / 1e9:.2f} Gpx, foreground {mask.mean():.2%}")

    base_str, base_t, base_mem = measure(kaggle_encode, mask)
    ours_str, ours_t, ours_mem = measure(rle.encode, mask)
    assert ours_str == base_str, "encoders disagree"
    print(f"encode  kaggle {base_t:7.2f} s  peak +{base_mem / size:5.2f}x mask")
    print(f"encode  hubkit {ours_t:7.2f} s  peak +{ours_mem / size:5.2f}x mask   speed x{base_t / ours_t:.1f}")
    del mask

    base_dec, base_t, base_mem = measure(kaggle_decode, base_str, shape, repeat=3)
    ours_dec, ours_t, ours_mem = measure(rle.decode, ours_str, shape, repeat=3)
    assert np.array_equal(base_dec, ours_dec), "decoders disagree"
    print(f"decode  kaggle {base_t:7.2f} s  peak +{base_mem / size:5.2f}x mask")
    print(f"decode  hubkit {ours_t:7.2f} s  peak +{ours_mem / size:5.2f}x mask   speed x{base_t / ours_t:.1f}")

    window = (shape[0] // 2, shape[1] // 2, 1024, 1024)
    win, win_t, win_mem = measure(rle.decode_window, ours_str, shape, window, repeat=3)
    r, c, h, w = window
    assert np.array_equal(win, ours_dec[r : r + h, c : c + w]), "window decode disagrees"
    print(f"window  hubkit {win_t:7.3f} s  peak +{win_mem / 2**20:.1f} MiB   1024 x 1024 from the string: x{ours_t / win_t:.0f} faster than whole decode")
    runs = rle.parse(ours_str, shape)
    win2, win2_t, _ = measure(rle.decode_window, runs, shape, window, repeat=3)
    assert np.array_equal(win2, win)
    print(f"window  hubkit {win2_t:7.4f} s  from parsed runs (many windows of one slide): x{ours_t / win2_t:.0f} faster than whole decode")


if __name__ == "__main__":
    main()
