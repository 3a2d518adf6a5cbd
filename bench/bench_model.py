"""Forward throughput of a zoo model per batch size and dtype: the plain fp32 baseline vs the settings
hubkit could run, and the one it picks on this machine.

All run in the same process on the same model and random input:

* baseline: fp32, NCHW, ``torch.no_grad``;
* ``torch.inference_mode`` and channels-last in fp32, and under bf16 autocast (and fp16 on CUDA);
* ``hubkit`` marks the dtype `hubkit.inference.config.autocast_dtype` picks here: fp16 on CUDA, bf16 on a
  CPU that computes bf16 in hardware, fp32 on other CPUs (where bf16 runs in slow fallback kernels).

Prints a table of tiles/s for each batch size and setting with its ratio to the baseline, then projects
the minutes of model time a test set takes (default: HuBMAP 2021's hidden set, ~5 Gpx, 60% of tiles
with tissue) for 1- and 4-model ensembles with flip TTA (2 passes) at hubkit's best rate measured.

    python bench/bench_model.py                                     # CPU, 512 px tiles, batches 1, 2, 4
    python bench/bench_model.py --batches 1,4,8,16,32 --iters 20    # on a GPU (a T4: the Kaggle table)
"""

from __future__ import annotations

import argparse
import time
from typing import Optional

import torch

from hubkit.inference.config import autocast_dtype
from hubkit.models import create_model


def tiles_per_second(model, x, iters: int, dtype: Optional[torch.dtype], fast: bool = True) -> float:
    """Tiles/s of ``model`` on the batch ``x``: under ``dtype`` autocast (None: fp32); ``fast`` =
    channels-last and ``torch.inference_mode`` (else NCHW and ``torch.no_grad``, the baseline)."""
    device_type = x.device.type
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        model = model.to(memory_format=torch.contiguous_format)
    grad_ctx = torch.inference_mode if fast else torch.no_grad

    def step():
        with grad_ctx(), torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return model(x)

    for _ in range(2):  # warm-up: cudnn autotune, allocator
        step()
    if device_type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        out = step()
    if device_type == "cuda":
        torch.cuda.synchronize()
    assert torch.isfinite(out.float()).all()
    return iters * x.shape[0] / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--architecture", default="Unet")
    ap.add_argument("--encoder", default="tu-tf_efficientnet_lite0")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--batches", default="1,2,4", help="batch sizes of the table (on a GPU: 1,4,8,16,32)")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--scale", type=float, default=2.0, help="model scale for the projection")
    ap.add_argument("--overlap", type=float, default=0.25, help="tile overlap for the projection")
    ap.add_argument("--gpx", type=float, default=5.0, help="pixels of the test set to project, in Gpx (HuBMAP 2021's "
                                                            "hidden set: ~10 slides, ~5 Gpx)")
    ap.add_argument("--tissue", type=float, default=0.6, help="share of tiles with tissue, for the projection")
    args = ap.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    torch.backends.cudnn.benchmark = True
    model = create_model(args.architecture, args.encoder).eval().to(device)
    picked = autocast_dtype(torch.device(device))
    dtypes = [None, torch.bfloat16] + ([torch.float16] if device == "cuda" else [])
    label = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    print(f"{args.architecture}/{args.encoder}, {args.tile} px tiles, on {name} (torch {torch.__version__}); "
          f"hubkit runs {label[picked]} here")
    heads = [f"{label[d]} CL{' (hubkit)' if d == picked else ''}" for d in dtypes]
    print(f"  {'batch':>5s}  {'fp32 NCHW':>10s}" + "".join(f"  {h:>18s}" for h in heads)
          + "   tiles/s (x the baseline)")
    best = 0.0
    for batch in [int(b) for b in args.batches.split(",")]:
        x = torch.rand(batch, 3, args.tile, args.tile, device=device)
        base = tiles_per_second(model, x, args.iters, None, fast=False)
        rates = {d: tiles_per_second(model, x, args.iters, d) for d in dtypes}
        best = max(best, rates[picked])
        print(f"  {batch:5d}  {base:10.2f}" + "".join(f"  {rates[d]:10.2f} (x{rates[d] / base:4.2f})" for d in dtypes))
    step = args.tile * (1 - args.overlap)
    tiles = args.gpx * 1e9 / args.scale**2 / step**2 * args.tissue
    for models in (1, 4):
        passes = models * 2
        print(f"  {args.gpx:g} Gpx at 1/{args.scale:g} scale, overlap {args.overlap:g}, "
              f"{args.tissue:.0%} tissue tiles: "
              f"{tiles:,.0f} tiles x {models} model(s) x 2 flips = {tiles * passes / best / 60:.1f} min of model time "
              f"at the best rate ({best:.1f} tiles/s)")


if __name__ == "__main__":
    main()
