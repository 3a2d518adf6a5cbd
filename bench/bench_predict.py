"""Race `predict_slide` against what users really run, with the same model on the same real-tissue slides.

Each slide has the outline of a real HuBMAP slide filled with real PAS tissue: the shared
Vanderbilt tiles the starter model never trained on, at HuBMAP magnification, with their glomerulus
masks as the truth. Three layouts show what tissue skipping is worth:

* ``hubmap``: the tissue outline of aaa6a05cc (~47% tissue, like the median HuBMAP slide);
* ``dense``: tissue everywhere (a dense biopsy: the tissue test skips nothing);
* ``glass``: the same outline shrunk into one corner (~12% tissue, mostly glass).

Methods (each in its own process, warmed up on a small slide first, then timed; interleaved rounds;
median and spread): ``hubkit`` (`predict_slide` as shipped, in a process whose malloc keeps freed
memory, as every ``hubkit`` command sets it: `hubkit.inference.keep_freed_memory`), ``hubkit-glibc``
(the same with glibc's own malloc settings, as the peers run) and the peers of `peers.py`: MONAI's
``sliding_window_inference`` as it ships (fp32) and with bf16 + channels-last, the 3rd-place
Kaggle 2021 inference loop, and deepflash2's tiled inference. No TTA for any of them (equal work).
Reported: seconds, peak RSS of the worker, Dice against the truth, and hubkit's speed ratio
against each peer; ``--ensemble N`` and ``--huge`` add hubkit-only runs.

    pip install monai                      # the MONAI baseline (not a hubkit dependency)
    python bench/bench_predict.py                          # 3 layouts, ~60 Mpx each, 2 rounds
    python bench/bench_predict.py --slides hubmap --rounds 3 --methods hubkit,monai-bf16
    python bench/bench_predict.py --size 1.0 --huge        # full aaa6a05cc size (240 Mpx), plus 2 Gpx
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import PEERS, STARTER  # noqa: E402  (bench/ is on the path)

METHODS = ["hubkit", "hubkit-glibc", *PEERS]
LAYOUTS = ("hubmap", "dense", "glass")


def _tissue(layout: str, h: int, w: int) -> np.ndarray:
    """Where the slide has tissue: (h, w) bool for one of `LAYOUTS`."""
    from hubkit.slides import read_mask
    from hubkit.testbed.data import find_data_dir

    if layout == "dense":
        return np.ones((h, w), bool)
    masks = find_data_dir() / "hubmap-kidney-0486052bb-patches" / "tissue_masks_level2"
    outline = read_mask(masks / "aaa6a05cc_tissue_mask.png")
    if layout == "hubmap":
        return cv2.resize(outline, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    tissue = np.zeros((h, w), bool)  # "glass": the outline at half size in the top-left quarter
    tissue[: h // 2, : w // 2] = cv2.resize(outline, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST).astype(bool)
    return tissue


def build_slide(path: Path, size: float, layout: str = "hubmap") -> tuple[tuple[int, int], str]:
    """Write a real-tissue slide of ``size`` x aaa6a05cc's (18484 x 13013) in ``layout``; returns its
    ``(height, width)`` and its truth RLE."""
    from hubkit.formats import rle
    from hubkit.slides import find_tile_pairs, write_slide
    from hubkit.testbed import VANDERBILT_TO_HUBMAP, default_tiles_dir, tiles_in_range
    from hubkit.testbed.data import find_data_dir
    from hubkit.testbed.mosaic import GLASS_RGB, mosaic_slide

    if find_data_dir() is None:
        sys.exit("needs the shared real data (../shared/data or $HUBKIT_DATA)")
    h, w = int(18484 * size), int(13013 * size)
    tissue = _tissue(layout, h, w)
    pairs = tiles_in_range(find_tile_pairs(default_tiles_dir()))[:8]
    texture, truth = mosaic_slide(pairs, columns=4, gap=0, tile_scale=VANDERBILT_TO_HUBMAP)
    reps = (-(-h // texture.shape[0]), -(-w // texture.shape[1]))
    rgb = np.tile(texture, (*reps, 1))[:h, :w]
    mask = np.tile(truth, reps)[:h, :w] & tissue
    rgb[~tissue] = GLASS_RGB
    write_slide(path, rgb, tile=512)
    return (h, w), rle.encode(mask)


def build_huge(path: Path) -> tuple[int, int]:
    from hubkit.slides import find_tile_pairs, write_slide_streamed
    from hubkit.testbed import VANDERBILT_TO_HUBMAP, default_tiles_dir, tiles_in_range
    from hubkit.testbed.mosaic import GLASS_RGB, mosaic_slide

    pairs = tiles_in_range(find_tile_pairs(default_tiles_dir()))[:8]
    piece, _ = mosaic_slide(pairs, columns=4, tile_scale=VANDERBILT_TO_HUBMAP)
    shape = (40_000, 50_000)
    r0, c0 = 18_000, 20_000
    glass = np.empty((512, 512, 3), np.uint8)
    glass[:] = GLASS_RGB

    def read_tile(r, c, h, w):
        out = glass[:h, :w].copy()
        rs, re_ = max(r, r0), min(r + h, r0 + piece.shape[0])
        cs, ce = max(c, c0), min(c + w, c0 + piece.shape[1])
        if rs < re_ and cs < ce:
            out[rs - r : re_ - r, cs - c : ce - c] = piece[rs - r0 : re_ - r0, cs - c0 : ce - c0]
        return out

    write_slide_streamed(path, shape, read_tile)
    return shape


def _hubkit(path, models, tta: str = "none") -> tuple[str, int, int]:
    import torch

    from hubkit.inference import PredictConfig, predict_slide
    from hubkit.slides import open_slide

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with open_slide(path) as slide:
        result = predict_slide(slide, models, PredictConfig(tta=tta, device=device))
    return result.output["predicted"], result.tiles_run, result.tiles_total


def worker(method: str, slide_path: str, warm_path: str, tta: str = "none", ensemble: int = 1) -> dict:
    """Run one method in this process (warm-up slide, then the timed slide); seconds, peak RSS, encoding."""
    import torch

    from hubkit.inference import keep_freed_memory
    from hubkit.models import Ensemble, zoo

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    models = zoo.load_zoo(zoo.default_zoo_dir(), [STARTER]).to(device)
    if method == "hubkit":
        keep_freed_memory()  # as every hubkit command does
    if method.startswith("hubkit"):
        models = Ensemble(list(models.members) * ensemble)  # the starter model N times: an N-model ensemble's work
        run = lambda path: _hubkit(path, models, tta)  # noqa: E731
    else:
        (member,) = models.members
        run = lambda path: (PEERS[method](path, member), 0, 0)  # noqa: E731
    run(warm_path)  # lazy imports, oneDNN kernels, CUDA context: a Kaggle run pays these once, not per slide
    t = time.perf_counter()
    encoding, tiles, total = run(slide_path)
    seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "peak_rss": rss, "encoding": encoding, "tiles": tiles, "tiles_total": total}


def run_json(args: list[str], what: str, env: Optional[dict] = None) -> dict:
    """Run a bench script's worker in its own process; the JSON object its last line prints."""
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{what} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_worker(method: str, slide: Path, warm: Path, tta: str = "none", ensemble: int = 1) -> dict:
    return run_json([__file__, "--worker", method, "--slide", str(slide), "--warm", str(warm), "--tta", tta,
                     "--ensemble", str(ensemble)], method)


def _race(path: Path, warm: Path, truth: str, methods: list[str], rounds: int) -> None:
    from hubkit.formats.metrics import rle_dice

    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for _ in range(rounds):
        for m in methods:
            runs[m].append(run_worker(m, path, warm))
    med = {m: statistics.median(r["seconds"] for r in runs[m]) for m in methods}
    for m in methods:
        secs = [r["seconds"] for r in runs[m]]
        rss = statistics.median(r["peak_rss"] for r in runs[m]) / 2**30
        ratio = f"   hubkit x{med[m] / med['hubkit']:.2f} faster" if "hubkit" in med and m != "hubkit" else ""
        print(f"    {m:12s} {med[m]:7.1f} s (range {min(secs):.1f}-{max(secs):.1f})   peak RSS {rss:5.2f} GiB   "
              f"Dice {rle_dice(runs[m][0]['encoding'], truth):.4f}{ratio}")
    if "hubkit" in runs:
        r = runs["hubkit"][0]
        print(f"    hubkit ran {r['tiles']} of {r['tiles_total']} tiles ({100 * r['tiles'] / r['tiles_total']:.0f}%; "
              "it skips tiles without tissue)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=float, default=0.5, help="slide size relative to aaa6a05cc (18484 x 13013)")
    ap.add_argument("--slides", default=",".join(LAYOUTS), help=f"tissue layouts, from {', '.join(LAYOUTS)}")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"from {', '.join(METHODS)}")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--huge", action="store_true", help="also hubkit on a 40,000 x 50,000 slide")
    ap.add_argument("--ensemble", type=int, default=0,
                    help="also time an N-model hubkit ensemble (the starter N times) with --tta, per Gpx")
    ap.add_argument("--tta", default="flip", help="TTA of the --ensemble run (the race runs without TTA)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--slide", help=argparse.SUPPRESS)
    ap.add_argument("--warm", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.slide, args.warm, args.tta, args.ensemble or 1)))
        return
    methods, layouts = args.methods.split(","), args.slides.split(",")
    unknown = sorted({*methods} - {*METHODS}) + sorted({*layouts} - {*LAYOUTS})
    if unknown:
        sys.exit(f"unknown method or layout {unknown}; methods: {', '.join(METHODS)}; layouts: {', '.join(LAYOUTS)}")

    import torch

    from hubkit.inference.tta import get_tta

    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.tiff"
        build_slide(warm, 0.12, "dense")
        print(f"{torch.get_num_threads()} torch threads, {'GPU' if torch.cuda.is_available() else 'CPU'}; "
              f"{args.rounds} interleaved rounds, medians; no TTA; each method in its own process")
        path = Path(tmp) / "bench.tiff"
        for layout in layouts:
            shape, truth = build_slide(path, args.size, layout)
            print(f"  {layout}: {shape[0]} x {shape[1]} px ({shape[0] * shape[1] / 1e6:.0f} Mpx)")
            _race(path, warm, truth, methods, args.rounds)
        if args.ensemble:
            shape, _ = build_slide(path, args.size, "hubmap")
            r = run_worker("hubkit", path, warm, args.tta, args.ensemble)
            passes = args.ensemble * len(get_tta(args.tta))
            gpx = shape[0] * shape[1] / 1e9
            print(f"  {args.ensemble}-model ensemble, TTA {args.tta}: {r['seconds']:.1f} s, {r['tiles']} tissue tiles x "
                  f"{passes} passes = {r['tiles'] * passes / r['seconds']:.0f} tile passes/s; "
                  f"{r['seconds'] / gpx / 60:.1f} min per Gpx of slide like this one")
        if args.huge:
            big = Path(tmp) / "huge.tiff"
            t = time.perf_counter()
            shape = build_huge(big)
            print(f"huge slide {shape[0]} x {shape[1]} px ({shape[0] * shape[1] / 1e9:.1f} Gpx, "
                  f"{big.stat().st_size / 1e6:.0f} MB zlib TIFF) written in {time.perf_counter() - t:.0f} s")
            r = run_worker("hubkit", big, warm)
            print(f"  hubkit {r['seconds']:7.1f} s   peak RSS {r['peak_rss'] / 2**30:5.2f} GiB "
                  f"(goal < 4 GiB; the slide's pixels alone are {shape[0] * shape[1] * 3 / 2**30:.1f} GiB)")


if __name__ == "__main__":
    main()
