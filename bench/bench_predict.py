"""Time `predict_slide` against a naive baseline with the same model on the same real-tissue slide.

The slide has the outline of a real HuBMAP slide (the tissue mask of aaa6a05cc, ~48% tissue like
the median HuBMAP slide) filled with real PAS tissue: the shared Vanderbilt tiles the starter
model never trained on, at HuBMAP magnification, with their glomerulus masks as the truth.

* naive: the whole slide read at full resolution, shrunk, every tile predicted (glass too), fp32,
  model-scale float accumulators, a full-resolution float map, the Kaggle kernels' RLE encoder;
* hubkit: `predict_slide` (tissue skipping, AMP + channels-last, reader threads, column strips).

Each runs in its own process, so each peak RSS is its own, and is timed after a warm-up on a
small slide (CUDA context, cudnn autotuning), which a Kaggle run pays once, not per slide. Then ``--huge`` writes a 40,000 x
50,000 slide (2 Gpx, a small piece of tissue on glass) and reports hubkit's peak RSS on it.

    python bench/bench_predict.py              # half-size slide (~60 Mpx), flip TTA
    python bench/bench_predict.py --size 1.0   # full aaa6a05cc size (240 Mpx)
    python bench/bench_predict.py --huge       # plus the 2 Gpx case
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent


def build_slide(path: Path, size: float) -> tuple[tuple[int, int], str]:
    from hubkit.formats import rle
    from hubkit.slides import find_tile_pairs, read_mask, write_slide
    from hubkit.testbed import STARTER_HELD_OUT_FIRST, VANDERBILT_TO_HUBMAP, default_tiles_dir
    from hubkit.testbed.data import find_data_dir
    from hubkit.testbed.mosaic import GLASS_RGB, mosaic_slide

    data = find_data_dir()
    if data is None:
        sys.exit("needs the shared real data (../shared/data or $HUBKIT_DATA)")
    tissue = read_mask(data / "hubmap-kidney-0486052bb-patches" / "tissue_masks_level2" / "aaa6a05cc_tissue_mask.png")
    h, w = int(18484 * size), int(13013 * size)
    tissue = cv2.resize(tissue, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    pairs = [p for p in find_tile_pairs(default_tiles_dir()) if p[0].stem >= STARTER_HELD_OUT_FIRST][:8]
    texture, truth = mosaic_slide(pairs, columns=4, gap=0, tile_scale=VANDERBILT_TO_HUBMAP)
    reps = (-(-h // texture.shape[0]), -(-w // texture.shape[1]))
    rgb = np.tile(texture, (*reps, 1))[:h, :w]
    mask = np.tile(truth, reps)[:h, :w] & tissue
    rgb[~tissue] = GLASS_RGB
    write_slide(path, rgb, tile=512)
    return (h, w), rle.encode(mask)


def build_huge(path: Path) -> tuple[int, int]:
    from hubkit.slides import find_tile_pairs, write_slide_streamed
    from hubkit.testbed import STARTER_HELD_OUT_FIRST, VANDERBILT_TO_HUBMAP, default_tiles_dir
    from hubkit.testbed.mosaic import GLASS_RGB, mosaic_slide

    pairs = [p for p in find_tile_pairs(default_tiles_dir()) if p[0].stem >= STARTER_HELD_OUT_FIRST][:8]
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


def worker(kind: str, slide_path: str, tta: str, ensemble: int = 1) -> dict:
    """Run one method in this process; report seconds, peak RSS, tiles and the encoding."""
    import torch

    from hubkit.inference import PredictConfig, predict_slide
    from hubkit.models import Ensemble, zoo
    from hubkit.slides import open_slide

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    models = zoo.load_zoo(zoo.default_zoo_dir()).to(device)
    if kind == "hubkit":
        models = Ensemble(list(models.members) * ensemble)  # the starter model N times: an N-model ensemble's work
    # Warm up on a small slide first (CUDA context, cudnn autotuning, lazy imports): a Kaggle run
    # pays this once, not per slide.
    from hubkit.slides import InMemorySlide

    warm = InMemorySlide(np.random.default_rng(0).integers(0, 256, (2048, 2048, 3), dtype=np.uint8))
    if kind == "hubkit":
        predict_slide(warm, models, PredictConfig(tta=tta, device=device.type, min_tissue=0))
    else:
        naive(warm, models, tta, device)
    t = time.perf_counter()
    with open_slide(slide_path) as slide:
        if kind == "hubkit":
            result = predict_slide(slide, models, PredictConfig(tta=tta, device=device.type))
            encoding, tiles = result.output["predicted"], result.tiles_run // len(models)
        else:
            encoding, tiles = naive(slide, models, tta, device)
    seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "peak_rss": rss, "encoding": encoding, "tiles": tiles}


def naive(slide, models, tta: str, device) -> tuple[str, int]:
    """The straightforward kernel: everything in memory, every tile, fp32."""
    import torch

    from hubkit.inference.tiling import grid_starts
    from hubkit.inference.tta import get_tta
    from hubkit.slides import scaled_size

    (member,) = models
    model, card = member.model, member.card
    h, w = slide.shape
    whole = slide.read((0, 0, h, w))  # the whole slide at full resolution
    hs, ws = scaled_size(h, card.scale), scaled_size(w, card.scale)
    small = cv2.resize(whole, (ws, hs), interpolation=cv2.INTER_AREA)
    prob = np.zeros((hs, ws), np.float32)
    count = np.zeros((hs, ws), np.float32)
    t = card.tile_size
    mean = np.array(card.mean, np.float32) * 255
    std = np.array(card.std, np.float32) * 255
    model = model.float().to(memory_format=torch.contiguous_format)
    tiles = 0
    for r in grid_starts(hs, t, 0.25):
        for c in grid_starts(ws, t, 0.25):
            tile = np.zeros((t, t, 3), np.float32)
            part = small[r : r + t, c : c + t]
            tile[: part.shape[0], : part.shape[1]] = part
            x = torch.from_numpy((tile - mean) / std).permute(2, 0, 1)[None].to(device)
            with torch.no_grad():
                p = sum(tf.inverse(torch.sigmoid(model(tf.forward(x)))) for tf in get_tta(tta)) / len(get_tta(tta))
            p = p[0, 0].cpu().numpy()[: part.shape[0], : part.shape[1]]
            prob[r : r + t, c : c + t][: p.shape[0], : p.shape[1]] += p
            count[r : r + t, c : c + t][: p.shape[0], : p.shape[1]] += 1
            tiles += 1
    full = cv2.resize(prob / np.maximum(count, 1), (w, h), interpolation=cv2.INTER_LINEAR)  # full-res float map
    from bench_rle import kaggle_encode  # bench/ is on the path: this script runs from there

    return kaggle_encode((full > card.threshold).astype(np.uint8)), tiles


def run_json(args: list[str], what: str, env: Optional[dict] = None) -> dict:
    """Run a bench script's worker in its own process; the JSON object its last line prints."""
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{what} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_worker(kind: str, slide: Path, tta: str, ensemble: int = 1) -> dict:
    return run_json([__file__, "--worker", kind, "--slide", str(slide), "--tta", tta, "--ensemble", str(ensemble)], kind)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=float, default=0.5, help="slide size relative to aaa6a05cc (18484 x 13013)")
    ap.add_argument("--tta", default="flip")
    ap.add_argument("--huge", action="store_true", help="also the 40,000 x 50,000 slide")
    ap.add_argument("--ensemble", type=int, default=0,
                    help="also time an N-model ensemble (the starter N times) and project minutes per Gpx")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--slide", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.slide, args.tta, args.ensemble or 1)))
        return

    from hubkit.formats.hubmap2021 import rle_dice

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.tiff"
        shape, truth = build_slide(path, args.size)
        print(f"slide {shape[0]} x {shape[1]} px ({shape[0] * shape[1] / 1e6:.0f} Mpx) of real tissue, "
              f"TTA {args.tta}; each method in its own process")
        results = {kind: run_worker(kind, path, args.tta) for kind in ("naive", "hubkit")}
        for kind, r in results.items():
            print(f"  {kind:7s} {r['seconds']:7.1f} s   peak RSS {r['peak_rss'] / 2**30:5.2f} GiB   "
                  f"Dice vs truth {rle_dice(r['encoding'], truth):.4f}")
        n, h = results["naive"], results["hubkit"]
        print(f"  hubkit: x{n['seconds'] / h['seconds']:.1f} faster, peak RSS x{h['peak_rss'] / n['peak_rss']:.2f} of naive; "
              f"predictions agree (Dice {rle_dice(h['encoding'], n['encoding']):.4f})")
        if args.ensemble:
            r = run_worker("hubkit", path, args.tta, args.ensemble)
            passes = args.ensemble * (2 if args.tta == "flip" else 1 if args.tta == "none" else 4 if args.tta == "flip2" else 8)
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
            r = run_worker("hubkit", big, args.tta)
            print(f"  hubkit {r['seconds']:7.1f} s   peak RSS {r['peak_rss'] / 2**30:5.2f} GiB "
                  f"(goal < 4 GiB; the slide's pixels alone are {shape[0] * shape[1] * 3 / 2**30:.1f} GiB)")


if __name__ == "__main__":
    main()
