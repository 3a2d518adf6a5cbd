"""The ``hubkit`` command line: ``hubkit info``, ``hubkit zoo``, ``hubkit train``, ``hubkit demo``."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

import hubkit
import hubkit.errors


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cmd_info(args: argparse.Namespace) -> int:
    """Print versions, the compute device and the data folders hubkit finds."""
    from hubkit.sample import find_data_dir

    print(f"hubkit {hubkit.__version__} on Python {platform.python_version()} ({platform.machine()})")
    for dist in ("torch", "torchvision", "segmentation-models-pytorch", "timm", "albumentations",
                 "rasterio", "tifffile", "imagecodecs", "numpy", "pandas", "scikit-image"):
        print(f"  {dist:28s} {_version(dist)}")
    try:
        import torch

        device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
        print(f"  device: {device}, {torch.get_num_threads()} CPU threads")
    except Exception as err:  # noqa: BLE001 - info must print whatever it can
        print(f"  device: torch does not import ({err})")
    from hubkit.zoo import default_zoo_dir, find_cards

    data = find_data_dir()
    print(f"  real data: {data if data else 'not found (set HUBKIT_DATA)'}")
    zoo_dir = default_zoo_dir()
    count = len(find_cards(zoo_dir)) if zoo_dir.is_dir() else 0
    print(f"  model zoo: {zoo_dir} ({count} model card(s); `hubkit zoo` lists them)")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    """List the model cards under a folder (default: the zoo shipped with hubkit)."""
    from hubkit.card import ModelCard
    from hubkit.zoo import default_zoo_dir, find_cards

    root = Path(args.root) if args.root else default_zoo_dir()
    cards = find_cards(root) if root.is_dir() else []
    print(f"{len(cards)} model card(s) under {root}")
    for path in cards:
        card = ModelCard.read(path)
        cv = "-" if card.cv_score is None else f"{card.cv_score:.4f}"
        print(f"  {card.name:24s} {card.architecture}/{card.encoder}  scale 1/{card.scale:g}  tile {card.tile_size}  "
              f"classes {card.classes}  threshold {card.threshold:g}  CV Dice {cv}  ({path.parent})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Build a sample HuBMAP-format slide, read it back windowed, and round-trip its mask's RLE."""
    from hubkit import rle
    from hubkit.annotations import load_features, mask_to_features, rasterize, save_geojson
    from hubkit.sample import find_data_dir, find_tile_pairs, mosaic_slide, synthetic_slide
    from hubkit.slide import open_slide
    from hubkit.tiffwrite import write_slide
    from hubkit.tiling import MIN_TISSUE_FRACTION, iter_windows, tissue_fraction, tissue_mask

    out = Path(args.out)
    (out / "train").mkdir(parents=True, exist_ok=True)
    tiles = Path(args.tiles) if args.tiles else None
    if tiles is None and not args.synthetic and find_data_dir():
        tiles = find_data_dir() / "aidpath-pas-glomeruli-1024"
    if tiles is not None and find_tile_pairs(tiles):
        pairs = find_tile_pairs(tiles)
        rgb, mask = mosaic_slide(pairs, columns=6)
        source = f"REAL tissue: {len(pairs)} tiles from {tiles}"
    else:
        rgb, mask = synthetic_slide()
        source = "SYNTHETIC drawing (no real tiles found; pass --tiles DIR of images/ + masks/)"
    print(f"sample slide: {rgb.shape[0]} x {rgb.shape[1]} px, {source}")

    encoding = rle.encode(mask)
    rows = []
    for layout in ("bands", "pages"):
        slide_id = f"sample-{layout}"
        path = write_slide(out / "train" / f"{slide_id}.tiff", rgb, layout=layout)
        save_geojson(out / "train" / f"{slide_id}.json", mask_to_features(mask))
        rows.append((slide_id, encoding))
        t0 = time.perf_counter()
        with open_slide(path) as slide:
            tiles_total = tiles_tissue = 0
            thumb_scale = 16
            tissue = tissue_mask(slide.thumbnail(thumb_scale))
            consistent = True
            runs = rle.parse(encoding, slide.shape)
            polys = load_features(out / "train" / f"{slide_id}.json")
            for win in iter_windows(slide.shape, 1024, overlap=0.25):
                tiles_total += 1
                if tissue_fraction(tissue, win, thumb_scale) < MIN_TISSUE_FRACTION:
                    continue
                tiles_tissue += 1
                consistent &= slide.read(win, scale=2).shape == (512, 512, 3)
                inside = win.intersect(slide.shape)
                truth = mask[inside.slices]
                consistent &= np.array_equal(rle.decode_window(runs, slide.shape, inside), truth)
                consistent &= np.array_equal(rasterize(polys, slide.shape, inside), truth)
            seconds = time.perf_counter() - t0
        print(
            f"  {path.name:22s} layout={layout:5s} tiles={tiles_total} with tissue={tiles_tissue} "
            f"read+check {seconds:.1f} s; RLE and polygon windows equal the mask: {consistent}"
        )
        if not consistent:
            return 1
    with open(out / "train.csv", "w") as f:
        f.write("id,encoding\n" + "".join(f"{i},{e}\n" for i, e in rows))
    decoded = rle.decode(encoding, mask.shape)
    print(f"  RLE: {len(encoding.split()) // 2} runs, whole-mask round trip exact: {np.array_equal(decoded, mask)}")
    print(f"wrote a HuBMAP-format folder to {out}/ (train.csv, train/<id>.tiff, train/<id>.json)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train the folds of a config file; each fold's best epoch becomes a zoo model."""
    import json as _json
    from dataclasses import replace

    from hubkit.train import load_config, run, summary_json

    cfg = load_config(args.config)
    overrides = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        try:
            overrides[key] = _json.loads(value)
        except ValueError:
            overrides[key] = value
    if args.fold is not None:
        overrides["train_folds"] = args.fold
    try:
        cfg = replace(cfg, **overrides)
    except TypeError as err:
        raise hubkit.errors.HubkitError(f"--set: {err}") from None
    results = run(cfg, progress=not args.quiet)
    if args.summary:
        summary_json(results, args.summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubkit", description=hubkit.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hubkit {hubkit.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="versions, device and data paths")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("zoo", help="list the model cards under a folder")
    p.add_argument("root", nargs="?", help="folder to search (default: hubkit's own zoo)")
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("train", help="train zoo models from a JSON/YAML config")
    p.add_argument("config", help="config file (see hubkit.train.TrainConfig for the keys)")
    p.add_argument("--fold", type=int, action="append", help="train this fold (repeatable; default: the config's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (JSON value)")
    p.add_argument("--summary", help="write the folds' scores to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="build a sample slide and run the I/O path end to end")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--tiles", help="folder with images/ and masks/ of real tiles (default: the shared AIDPATH set if found)")
    p.add_argument("--synthetic", action="store_true", help="use the synthetic drawing even when real tiles exist")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except hubkit.errors.HubkitError as err:
        print(f"hubkit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
