"""Forward throughput of a zoo model: the plain fp32 baseline vs hubkit's inference settings.

Both run in the same process on the same model and random input:

* baseline: fp32, NCHW, ``torch.no_grad``;
* hubkit: ``torch.inference_mode``, channels-last, autocast (fp16 on CUDA, bf16 on CPU).

Prints tiles/s for each and the ratio, then projects the minutes a 1 Gpx slide takes for a
4-model ensemble with flip TTA (2 passes) at the given scale and overlap, every tile predicted
(no tissue skipping: the worst case).

    python bench/bench_model.py                        # CPU, 512 px tiles, batch 2
    python bench/bench_model.py --batch 32 --iters 20  # on a GPU
"""

from __future__ import annotations

import argparse
import time

import torch

from hubkit.models import create_model


def tiles_per_second(model, x, iters: int, fast: bool) -> float:
    device_type = x.device.type
    dtype = torch.float16 if device_type == "cuda" else torch.bfloat16
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    grad_ctx = torch.inference_mode if fast else torch.no_grad

    def step():
        with grad_ctx(), torch.autocast(device_type, dtype=dtype, enabled=fast):
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
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--scale", type=float, default=2.0, help="model scale for the projection")
    ap.add_argument("--overlap", type=float, default=0.25, help="tile overlap for the projection")
    args = ap.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    torch.backends.cudnn.benchmark = True
    model = create_model(args.architecture, args.encoder).eval().to(device)
    x = torch.rand(args.batch, 3, args.tile, args.tile, device=device)
    print(f"{args.architecture}/{args.encoder}, {args.tile} px tiles, batch {args.batch}, on {name} (torch {torch.__version__})")
    base = tiles_per_second(model, x, args.iters, fast=False)
    print(f"  baseline fp32 NCHW no_grad         {base:8.1f} tiles/s")
    fast = tiles_per_second(model, x, args.iters, fast=True)
    amp = "fp16" if device == "cuda" else "bf16"
    print(f"  hubkit {amp} channels-last inference {fast:8.1f} tiles/s   x{fast / base:.2f}")
    step = args.tile * (1 - args.overlap)
    tiles = 1e9 / args.scale**2 / step**2
    passes = 4 * 2
    print(
        f"  1 Gpx slide at 1/{args.scale:g} scale, overlap {args.overlap:g}: {tiles:,.0f} tiles; "
        f"4 models x 2 flips = {tiles * passes / fast:.0f} s of model time (every tile; tissue skipping cuts this)"
    )


if __name__ == "__main__":
    main()
