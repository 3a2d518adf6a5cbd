"""Slides per hour of a folder run: in one process, and on Dask with 1 and with N workers.

The folder is a local competition of real PAS tissue (`hubkit.testbed.make_competition`: the
shared Vanderbilt tiles at HuBMAP magnification, both band layouts), predicted by the starter
model. The baseline is what users run today, `hubkit predict` in one process with torch's own
threads; then ``--engine dask`` with one worker, and with ``--workers`` workers (one torch thread
each). Every method writes its own submission, and the files are compared byte for byte between
the Dask runs and an in-process run with one torch thread.

    python bench/bench_cluster.py                 # 2 workers, 6 slides
    python bench/bench_cluster.py --workers 4 --copies 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def build(folder: Path, copies: int) -> int:
    """A competition of ``copies`` x the small local one (2 slides each); returns the slide count."""
    from hubkit.testbed import SMALL, default_tiles_dir, make_competition
    from hubkit.testbed.data import find_data_dir

    if find_data_dir() is None:
        sys.exit("needs the shared real data (../shared/data or $HUBKIT_DATA)")
    make_competition(folder, default_tiles_dir(), SMALL * copies)
    return len(SMALL) * copies


def timed(run) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--copies", type=int, default=3, help="copies of the 2-slide local competition")
    parser.add_argument("--tta", default="flip")
    args = parser.parse_args()

    from hubkit.inference import PredictConfig, predict_folder
    from hubkit.inference.cluster import predict_folder_dask
    from hubkit.models.zoo import ZooSource, default_zoo_dir

    tmp = Path(tempfile.mkdtemp(prefix="hubkit-bench-cluster-"))
    try:
        n = build(tmp / "comp", args.copies)
        source = ZooSource(str(default_zoo_dir()))
        quiet = dict(log=lambda _: None)
        base = dict(device="cpu", tta=args.tta)
        ensemble = source.load("cpu")
        results = []
        cfg = PredictConfig(**base)
        results.append(("in-process, torch threads", timed(lambda: predict_folder(tmp / "comp", tmp / "a.csv", ensemble, cfg, **quiet))))
        one = PredictConfig(**base, torch_threads=1)
        results.append(("in-process, 1 torch thread", timed(lambda: predict_folder(tmp / "comp", tmp / "b.csv", ensemble, one, **quiet))))
        for workers in (1, args.workers):
            out = tmp / f"dask{workers}.csv"
            seconds = timed(lambda: predict_folder_dask(tmp / "comp", out, source, one, workers=workers, fresh=True, **quiet))
            results.append((f"dask, {workers} worker(s) x 1 thread", seconds))
            same = out.read_bytes() == (tmp / "b.csv").read_bytes()
            print(f"  dask {workers} worker(s): submission {'byte-identical to' if same else 'DIFFERS from'} the in-process one")
        baseline = results[0][1]
        print(f"{n} real-tissue slides, starter model, TTA {args.tta}, {os.cpu_count()} cores "
              "(times include starting the cluster and loading the models)")
        for name, seconds in results:
            print(f"  {name:34s} {seconds:7.1f} s  {3600 * n / seconds:7.0f} slides/h  x{baseline / seconds:.2f} vs baseline")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
