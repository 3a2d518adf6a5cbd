"""Slowdown on shared cores: each method quiet, then beside N busy processes, in interleaved rounds.

Shared cores are the normal case (Dask workers on one box, Kaggle notebooks, CI). The slide is
bench_predict's real-tissue slide (the outline of a HuBMAP slide filled with held-out Vanderbilt
PAS tissue); the model is the starter model, no TTA. Methods, each in its own process:

* ``hubkit``: `predict_slide` as shipped (its `hubkit.inference.threads.ThreadGovernor` picks
  all cores or one, whichever is faster now);
* ``hubkit-fixed``: the same with every core always (a thread count given), as before the governor;
* the peers of `peers.py` (``--methods`` picks them): by default ``monai-bf16``, MONAI's
  ``sliding_window_inference`` with the two switches its users flip, bf16 autocast and
  channels-last; also ``monai`` (fp32), ``kaggle-3rd`` and ``deepflash2``.

A busy process is ``while True: pass`` (one core each). Reported: median seconds over the rounds
per method and load, and the slowdown against the same method quiet.

    pip install monai                      # the baseline (not a hubkit dependency)
    python bench/bench_contention.py       # N = 0, 1, 2 busy processes, 2 rounds
    python bench/bench_contention.py --size 0.5 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import PEERS, STARTER  # noqa: E402  (bench/ is on the path)

METHODS = {
    "hubkit": {},
    "hubkit-fixed": {"HUBKIT_BENCH_FIXED_THREADS": "1"},
    **{peer: {} for peer in PEERS},
}
DEFAULT_METHODS = "hubkit,hubkit-fixed,monai-bf16"


def _hubkit(path, models) -> str:
    from hubkit.inference import PredictConfig, predict_slide
    from hubkit.slides import open_slide

    # hubkit-fixed: every core, always (torch_threads set turns the thread governor off), as before it
    fixed = os.cpu_count() if os.environ.get("HUBKIT_BENCH_FIXED_THREADS") else None
    with open_slide(path) as slide:
        cfg = PredictConfig(tta="none", device="cpu", torch_threads=fixed)
        return predict_slide(slide, models, cfg).output["predicted"]


def worker(method: str, slide_path: str, warm_path: str) -> dict:
    from hubkit.models import zoo

    models = zoo.load_zoo(zoo.default_zoo_dir(), [STARTER])
    (member,) = models.members
    run = (lambda path: PEERS[method](path, member)) if method in PEERS else (lambda path: _hubkit(path, models))
    run(warm_path)  # warm-up: lazy imports, oneDNN kernels
    t0, c0 = time.perf_counter(), time.process_time()
    encoding = run(slide_path)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0, "encoding": encoding}


def measure(method: str, slide: Path, warm: Path, busy: int) -> dict:
    from bench_predict import run_json

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        return run_json([__file__, "--worker", method, "--slide", str(slide), "--warm", str(warm)], method,
                        {**os.environ, **METHODS[method]})
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=float, default=0.35, help="slide size relative to aaa6a05cc (18484 x 13013)")
    ap.add_argument("--busy", default="0,1,2", help="numbers of busy processes beside the run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--methods", default=DEFAULT_METHODS, help=f"from {', '.join(METHODS)}")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--slide", help=argparse.SUPPRESS)
    ap.add_argument("--warm", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.slide, args.warm)))
        return

    from bench_predict import build_slide

    from hubkit.formats.metrics import rle_dice

    methods = args.methods.split(",")
    if set(methods) - set(METHODS):
        sys.exit(f"unknown method(s) {sorted(set(methods) - set(METHODS))}; choose from {', '.join(METHODS)}")
    loads = [int(n) for n in args.busy.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        path, warm = Path(tmp) / "bench.tiff", Path(tmp) / "warm.tiff"
        shape, truth = build_slide(path, args.size)
        build_slide(warm, 0.12, "dense")
        print(f"slide {shape[0]} x {shape[1]} px ({shape[0] * shape[1] / 1e6:.0f} Mpx) of real tissue, no TTA, "
              f"{os.cpu_count()} cores; {args.rounds} interleaved rounds, medians")
        runs: dict[tuple[str, int], list[dict]] = {}
        for _ in range(args.rounds):
            for busy in loads:
                for method in methods:
                    runs.setdefault((method, busy), []).append(measure(method, path, warm, busy))
        for method in methods:
            quiet = statistics.median(r["seconds"] for r in runs[(method, loads[0])])
            dice = rle_dice(runs[(method, loads[0])][0]["encoding"], truth)
            cells = []
            for busy in loads:
                secs = [r["seconds"] for r in runs[(method, busy)]]
                cpu = statistics.median(r["cpu_seconds"] for r in runs[(method, busy)])
                cells.append(f"{busy} busy: {statistics.median(secs):6.1f} s (x{statistics.median(secs) / quiet:.1f}, "
                             f"range {min(secs):.1f}-{max(secs):.1f}, CPU {cpu:.0f} s)")
            print(f"  {method:12s} Dice {dice:.4f} | " + " | ".join(cells))
        for busy in loads:
            if "hubkit" not in methods:
                break
            h = statistics.median(r["seconds"] for r in runs[("hubkit", busy)])
            ratios = [f"x{statistics.median(r['seconds'] for r in runs[(m, busy)]) / h:.2f} vs {m}"
                      for m in methods if m in PEERS]
            print(f"  {busy} busy: hubkit " + ", ".join(ratios))


if __name__ == "__main__":
    main()
