"""The ``hubkit`` command line: ``info``, ``zoo``, ``train``, ``predict``, ``score``, ``analyze``,
``make-competition``, ``demo``."""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Optional, Sequence


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


def _load_models(zoo_dir, names, device):
    from hubkit.predict import place_models
    from hubkit.zoo import default_zoo_dir, load_zoo

    root = Path(zoo_dir) if zoo_dir else default_zoo_dir()
    return place_models(load_zoo(root, names=names or None), device)


def _predict_config(args: argparse.Namespace):
    from hubkit.predict import PredictConfig

    return PredictConfig(overlap=args.overlap, mode=args.mode, sw_batch_size=args.batch, tta=args.tta,
                         threshold=args.threshold, device=args.device, progress=not args.quiet).validate()


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict every slide of a competition folder into a submission CSV."""
    from hubkit.predict import predict_slide
    from hubkit.slide import open_slide
    from hubkit.submit import predict_folder

    cfg = _predict_config(args)
    models = _load_models(args.zoo, args.model, cfg.torch_device())
    print(f"{len(models)} model(s): " + ", ".join(f"{c.name} (1/{c.scale:g}, tile {c.tile_size})" for _, c in models))

    def run(path, slide_id):
        with open_slide(path) as slide:
            return predict_slide(slide, models, cfg, name=slide_id)

    errors = predict_folder(args.data_dir, args.out, run, log=lambda m: print(m, file=sys.stderr))
    failed = [i for i, e in errors.items() if e]
    print(f"wrote {args.out}: {len(errors)} slide(s), {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


def cmd_score(args: argparse.Namespace) -> int:
    """Per-image Dice of a submission against a solution, and their mean (the leaderboard score)."""
    from hubkit.submit import score

    table = score(args.submission, args.solution)
    for slide_id, d in zip(table["id"], table["dice"]):
        print(f"  {slide_id:24s} Dice {d:.4f}")
    print(f"mean Dice {table['dice'].mean():.4f} over {len(table)} image(s)")
    return 0


def cmd_make_competition(args: argparse.Namespace) -> int:
    """Build a local competition folder from real tiles with masks."""
    from hubkit.competition import FULL, SMALL, default_tiles_dir, make_competition

    tiles = Path(args.tiles) if args.tiles else default_tiles_dir()
    table = make_competition(args.out, tiles, SMALL if args.small else FULL)
    for row in table.itertuples():
        print(f"  {row.id}: {row.height} x {row.width} px, layout {row.layout}, {row.source}")
    print(f"wrote {args.out}/ (test/<id>.tiff, sample_submission.csv, solution.csv)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job end to end: a local competition, predict with the starter model, score, overlay."""
    import cv2
    import pandas as pd

    from hubkit.competition import SMALL, STARTER_HELD_OUT_FIRST, default_tiles_dir, make_competition, overlay
    from hubkit.slide import open_slide
    from hubkit.submit import score

    out = Path(args.out)
    tiles = Path(args.tiles) if args.tiles else (None if args.synthetic else default_tiles_dir())
    data = out / "competition"
    held_out = tiles is not None and not args.tiles  # the shared Vanderbilt set: use the starter's unseen tiles
    table = make_competition(data, tiles, SMALL, first_tile=STARTER_HELD_OUT_FIRST if held_out else None)
    label = f"REAL tissue from {tiles}" if tiles else "SYNTHETIC drawings (no real tiles found; pass --tiles DIR)"
    if held_out:
        label += f" (tiles from {STARTER_HELD_OUT_FIRST} on, which the starter model never trained on)"
    print(f"local competition: {len(table)} slides, {label}")
    submission = out / "submission.csv"
    code = cmd_predict(argparse.Namespace(**{**vars(args), "data_dir": data, "out": str(submission)}))
    result = score(submission, data / "solution.csv")
    predicted = pd.read_csv(submission, dtype=str, keep_default_na=False)
    sub = dict(zip(predicted["id"], predicted["predicted"]))
    for row in table.itertuples():
        d = float(result.loc[result["id"] == row.id, "dice"].iloc[0])
        with open_slide(data / "test" / f"{row.id}.tiff") as slide:
            picture = overlay(slide, row.encoding, sub[row.id], scale=8)
        png = out / f"overlay-{row.id}.png"
        cv2.imwrite(str(png), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        print(f"  {row.id}: Dice {d:.4f}  ({row.height} x {row.width} px)  overlay {png} (red truth, green prediction)")
    print(f"mean Dice {result['dice'].mean():.4f} ({label})")
    return code


def _encodings(path, slide_id: Optional[str] = None, shape=None) -> dict:
    """``{id: encoding}`` from a submission (``id,predicted``) or solution/train (``id,encoding``)
    CSV; for one slide also from a polygon JSON or a mask image."""
    from hubkit import rle

    path = Path(path)
    if path.suffix.lower() != ".csv":
        if slide_id is None:
            raise hubkit.errors.HubkitError(f"{path}: polygons or a mask image describe one slide; analyze one slide file")
        if path.suffix.lower() in (".json", ".geojson"):
            from hubkit.annotations import features_to_rle, load_features

            return {slide_id: features_to_rle(load_features(path), shape, labels=["glomerulus", "glomeruli"])}
        from hubkit.sample import read_mask

        mask = read_mask(path)
        if mask.shape != tuple(shape):
            raise hubkit.errors.HubkitError(f"{path}: mask {mask.shape} does not match the slide {tuple(shape)}")
        return {slide_id: rle.encode(mask)}
    from hubkit.submit import read_id_table

    table = read_id_table(path, ("id",))
    column = "predicted" if "predicted" in table else "encoding"
    if column not in table:
        raise hubkit.errors.HubkitError(f"{path}: expected columns id and predicted (or encoding)")
    return dict(zip(table["id"], table[column]))


def _find_slide(root: Path, slide_id: str) -> Path:
    for folder in (root / "test", root / "train", root):
        for ext in (".tiff", ".tif"):
            if (folder / f"{slide_id}{ext}").is_file():
                return folder / f"{slide_id}{ext}"
    raise hubkit.errors.HubkitError(f"{root}: no slide {slide_id}.tiff in test/, train/ or the folder itself")


def cmd_analyze(args: argparse.Namespace) -> int:
    """Glomerulus records, detection metrics, density and a report for each predicted slide."""
    import pandas as pd

    from hubkit.annotations import load_features
    from hubkit.predict import PredictConfig, predict_image
    from hubkit.report import write_report
    from hubkit.slide import open_slide
    from hubkit.slide_analysis import analyze_slide, cortex_density

    target = Path(args.slide_or_dir)
    one = (None, None)
    if target.is_file():
        with open_slide(target) as slide:
            one = (target.stem, slide.shape)
    predictions = _encodings(args.pred, *one)
    truths = _encodings(args.truth, *one) if args.truth else {}
    if target.is_file():
        if target.stem not in predictions:
            raise hubkit.errors.HubkitError(f"{args.pred}: no row for slide {target.stem}")
        slides = {target.stem: target}
    else:
        slides = {i: _find_slide(target, i) for i in predictions}
    models = None
    if args.zoo:
        cfg = PredictConfig(device=args.device)
        models = _load_models(args.zoo, None, cfg.torch_device())
    out = Path(args.out)
    summary = []
    for slide_id, path in slides.items():
        with open_slide(path) as slide:
            probability = None
            if models:
                def probability(win, slide=slide):
                    return predict_image(models, slide.read(win, fill=255), cfg)
            result = analyze_slide(slide.shape, predictions[slide_id], truths.get(slide_id), probability,
                                   iou_threshold=args.iou, pixel_size_um=args.pixel_size, name=slide_id)
            anatomy = path.with_name(f"{slide_id}-anatomical-structure.json")
            density = None
            if args.pixel_size and anatomy.is_file():
                density = cortex_density(result.predicted, load_features(anatomy), slide.shape, args.pixel_size)
            page = write_report(out / slide_id, slide, result, predictions[slide_id], truths.get(slide_id), slide_id, density)
        row = {"id": slide_id, "glomeruli": len(result.predicted)}
        if result.detection is not None:
            row.update(result.detection.as_dict())
        if density is not None:
            row.update(cortex_mm2=density[0], per_mm2_cortex=density[1])
        summary.append(row)
        print(f"  {slide_id}: {len(result.predicted)} glomeruli" + (
            f", TP {row['tp']} FP {row['fp']} FN {row['fn']}, detection score {row['detection_score']:.3f}, "
            f"Dice {row['dice']:.4f}" if result.detection else "") + f"  -> {page}")
    table = pd.DataFrame(summary)
    if "tp" in table and len(table) > 1:
        from hubkit.analysis import Detection

        total = Detection(int(table["tp"].sum()), int(table["fp"].sum()), int(table["fn"].sum()), float(table["dice"].mean()))
        table = pd.concat([table, pd.DataFrame([{"id": "overall", "glomeruli": int(table["glomeruli"].sum()), **total.as_dict()}])])
        print(f"  overall: detection score {total.detection_score:.3f}, F1 {total.f1:.3f}, mean Dice {total.dice:.4f}")
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "summary.csv", index=False)
    print(f"wrote {out}/summary.csv and one report folder per slide")
    return 0


def cmd_wheelhouse(args: argparse.Namespace) -> int:
    """Build the offline wheel folder for Kaggle (see hubkit.wheelhouse)."""
    from hubkit.wheelhouse import PLATFORMS, build_wheelhouse, write_dataset_metadata

    wheels = build_wheelhouse(args.out, args.python, args.platform or PLATFORMS, download=not args.no_download)
    if args.dataset_id:
        write_dataset_metadata(args.out, args.dataset_id, "hubkit wheels")
    print(f"{len(wheels)} wheels in {args.out}")
    return 0


def cmd_pack_zoo(args: argparse.Namespace) -> int:
    """Copy a zoo's model folders into a Kaggle dataset folder with dataset-metadata.json."""
    import shutil

    from hubkit.card import ModelCard
    from hubkit.wheelhouse import write_dataset_metadata
    from hubkit.zoo import find_cards

    out = Path(args.out)
    cards = find_cards(args.zoo)
    if not cards:
        raise hubkit.errors.HubkitError(f"{args.zoo}: no card.json found")
    for path in cards:
        card = ModelCard.read(path)
        target = out / card.name
        target.mkdir(parents=True, exist_ok=True)
        for name in ("card.json", card.weights_file):
            shutil.copy2(path.parent / name, target / name)
    write_dataset_metadata(out, args.dataset_id, args.title)
    print(f"packed {len(cards)} model(s) into {out}/ with dataset-metadata.json")
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

    def predict_options(p):
        p.add_argument("--zoo", help="folder searched for model cards (default: hubkit's own zoo)")
        p.add_argument("--model", action="append", help="use only this model name (repeatable)")
        p.add_argument("--tta", default="flip", help="none, flip, flip2 or d4 (default: flip)")
        p.add_argument("--threshold", type=float, help="probability cut (default: the cards')")
        p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (default: 0.25)")
        p.add_argument("--mode", default="gaussian", help="blending: gaussian or constant")
        p.add_argument("--batch", type=int, help="tiles per forward pass (sw_batch_size; default 1 on CPU, 16 on CUDA)")
        p.add_argument("--device", default="auto", help="auto, cuda or cpu")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("predict", help="predict a competition folder into submission.csv")
    p.add_argument("data_dir", help="folder with sample_submission.csv and test/<id>.tiff")
    p.add_argument("--out", default="submission.csv", help="submission file (default: submission.csv)")
    predict_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("score", help="Dice of a submission against a solution (id,encoding)")
    p.add_argument("submission")
    p.add_argument("solution")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("analyze", help="glomerulus records, detection metrics, QuPath GeoJSON and a report")
    p.add_argument("slide_or_dir", help="a slide, or a folder with test/ or train/ slides")
    p.add_argument("--pred", required=True, help="submission CSV (id,predicted); for one slide also a mask image")
    p.add_argument("--truth", help="solution or train CSV (id,encoding); for one slide also polygons JSON or a mask")
    p.add_argument("--zoo", help="models for each glomerulus' confidence (omit: no confidence columns)")
    p.add_argument("--pixel-size", type=float, help="full-resolution pixel size in um (physical units, density)")
    p.add_argument("--iou", type=float, default=0.5, help="IoU at which a prediction finds a glomerulus")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="out/analysis", help="output folder (default: out/analysis)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("wheelhouse", help="build a flat folder of wheels for offline Kaggle installs")
    p.add_argument("out")
    p.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}")
    p.add_argument("--platform", action="append", help="platform tag (repeatable; default: manylinux x86-64 tags)")
    p.add_argument("--dataset-id", help="owner/slug: also write dataset-metadata.json")
    p.add_argument("--no-download", action="store_true", help="build hubkit's wheel only (no network)")
    p.set_defaults(func=cmd_wheelhouse)

    p = sub.add_parser("pack-zoo", help="a zoo folder as a Kaggle dataset (cards, weights, metadata)")
    p.add_argument("zoo")
    p.add_argument("out")
    p.add_argument("--dataset-id", required=True, help="owner/slug")
    p.add_argument("--title", default="hubkit model zoo")
    p.set_defaults(func=cmd_pack_zoo)

    p = sub.add_parser("make-competition", help="build a local competition folder from real tiles")
    p.add_argument("out", help="folder to write")
    p.add_argument("--tiles", help="folder with images/ and masks/ (default: the shared Vanderbilt tiles)")
    p.add_argument("--small", action="store_true", help="two small slides instead of three large ones")
    p.set_defaults(func=cmd_make_competition)

    p = sub.add_parser("demo", help="the main job end to end: local competition, predict, score, overlay")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--tiles", help="folder with images/ and masks/ (default: the shared Vanderbilt tiles if found)")
    p.add_argument("--synthetic", action="store_true", help="use synthetic slides even when real tiles exist")
    predict_options(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (hubkit.errors.HubkitError, ValueError, OSError) as err:
        print(f"hubkit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
