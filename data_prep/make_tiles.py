"""Cut a training tile set at model scale from tile folders and/or a competition folder.

    python data_prep/make_tiles.py --out tiles/starter \
        --tiles ../shared/data/hubmap-vanderbilt-pas-glomeruli-1600x1200:vanderbilt:1.69 \
        --tiles ../shared/data/aidpath-pas-glomeruli-1024:aidpath:3.09

``--tiles FOLDER:SOURCE:SCALE`` shrinks that source's tiles SCALE times (sources differ in
magnification: pick SCALE so glomeruli come out the size the model's card scale gives on HuBMAP
slides). ``--competition DIR --scale S`` cuts tiles from ``DIR/train.csv`` + ``DIR/train/*.tiff`` (one slide
after another, or ``--engine dask [--workers N | --scheduler ADDRESS]``: one Dask task per slide).
Writes ``images/``, ``masks/``, ``index.csv`` (with a ``group`` column for folds) and ``stats.json``.
"""

from __future__ import annotations

import argparse
import sys

from hubkit.training.prep import prepare_slides, prepare_tile_folder, write_index


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="tile set folder to write")
    ap.add_argument("--tiles", action="append", default=[], metavar="FOLDER:SOURCE:SCALE")
    ap.add_argument("--competition", help="competition-format folder with train.csv and train/*.tiff")
    ap.add_argument("--scale", type=float, default=2.0, help="downscale factor for --competition slides")
    ap.add_argument("--tile", type=int, default=512, help="tile side at model scale for --competition slides")
    ap.add_argument("--group-size", type=int, default=40, help="tile-number block that forms one group")
    ap.add_argument("--classes", type=int, default=1, choices=[1, 2],
                    help="--tiles masks: 1 (any non-zero = glomerulus) or 2 (labelled 1 healthy, 2 sclerotic)")
    ap.add_argument("--engine", default="local", choices=["local", "dask"],
                    help="--competition slides one after another, or one Dask task per slide")
    ap.add_argument("--workers", type=int, help="dask: local worker processes (default: one per core)")
    ap.add_argument("--scheduler", help="dask: a running scheduler's address instead of a local cluster")
    args = ap.parse_args(argv)
    rows = []
    for spec in args.tiles:
        try:
            folder, source, scale = spec.rsplit(":", 2)
            scale = float(scale)
        except ValueError:
            ap.error(f"--tiles takes FOLDER:SOURCE:SCALE, got {spec!r}")
        found = prepare_tile_folder(folder, args.out, source, scale, args.group_size, args.classes)
        print(f"{source}: {len(found)} tiles from {folder} at 1/{scale:g}")
        rows += found
    if args.competition:
        found = prepare_slides(args.competition, args.out, args.scale, args.tile, engine=args.engine,
                               workers=args.workers, scheduler=args.scheduler)
        print(f"competition: {len(found)} tiles from {args.competition} at 1/{args.scale:g}")
        rows += found
    if not rows:
        ap.error("nothing to do: give --tiles and/or --competition")
    index = write_index(args.out, rows)
    print(f"wrote {len(index)} tiles in {index['group'].nunique()} groups to {args.out}/ (index.csv, stats.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
