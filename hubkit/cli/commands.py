"""What each ``hubkit`` command does: a few lines that call the library and print its results.

Library modules are imported inside each command, so ``hubkit --help`` does not import torch.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import hubkit

__all__ = ["COMMANDS"]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _source(args: argparse.Namespace):
    """Where the models ``--zoo`` / ``--model`` name come from (loaded where they run)."""
    from hubkit.models.zoo import ZooSource, default_zoo_dir

    return ZooSource(str(Path(args.zoo) if args.zoo else default_zoo_dir()), tuple(getattr(args, "model", None) or ()) or None)


def _ensemble(args: argparse.Namespace, cfg):
    """The models ``--zoo`` / ``--model`` name, on the config's device."""
    return _source(args).load(str(cfg.torch_device()))


def _predict_config(args: argparse.Namespace):
    from hubkit.cli.options import dataclass_from_args
    from hubkit.inference.config import PredictConfig

    return dataclass_from_args(PredictConfig, args, progress=not args.quiet)


def cmd_info(args: argparse.Namespace) -> int:
    """Print versions, the compute device and the data folders hubkit finds."""
    import torch

    from hubkit.models.zoo import default_zoo_dir, find_cards
    from hubkit.testbed.data import find_data_dir

    print(f"hubkit {hubkit.__version__} on Python {platform.python_version()} ({platform.machine()})")
    for dist in ("torch", "torchvision", "segmentation-models-pytorch", "timm", "albumentations", "rasterio",
                 "tifffile", "imagecodecs", "pycocotools", "numpy", "pandas", "scikit-image"):
        print(f"  {dist:28s} {_version(dist)}")
    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    print(f"  device: {device}, {torch.get_num_threads()} CPU threads")
    data = find_data_dir()
    print(f"  real data: {data if data else 'not found (set HUBKIT_DATA)'}")
    print(f"  model zoo: {default_zoo_dir()} ({len(find_cards(default_zoo_dir()))} model card(s); `hubkit zoo` lists them)")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    """List the model cards under a folder (default: the zoo shipped with hubkit)."""
    from hubkit.models.card import ModelCard
    from hubkit.models.zoo import default_zoo_dir, find_cards

    root = Path(args.root) if args.root else default_zoo_dir()
    cards = find_cards(root) if root.is_dir() else []
    print(f"{len(cards)} model card(s) under {root}")
    for path in cards:
        card = ModelCard.read(path)
        cv = "-" if card.cv_score is None else f"{card.cv_score:.4f}"
        if card.kind == "classifier":
            print(f"  {card.name:24s} classifier {card.encoder}  {card.inputs} crops {card.tile_size}  "
                  f"positive {card.class_names[0]}  threshold {card.threshold:g}  CV ROC AUC {cv}  "
                  f"{card.licence.split(' (')[0] or 'MIT'}  ({path.parent})")
            continue
        print(f"  {card.name:24s} {card.architecture}/{card.encoder}  scale 1/{card.scale:g}  tile {card.tile_size}  "
              f"classes {','.join(card.class_names)}  threshold {card.threshold:g}  CV Dice {cv}  ({path.parent})")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict every slide of a competition folder into a submission CSV (in this process, or on Dask)."""
    cfg = _predict_config(args)
    if args.engine == "dask":
        from hubkit.inference.cluster import predict_folder_dask

        result = predict_folder_dask(args.data_dir, args.out, _source(args), cfg, args.format, workers=args.workers,
                                     scheduler=args.scheduler, retries=args.retries, fresh=args.fresh, log=_err)
    else:
        from hubkit.inference.runner import predict_folder

        ensemble = _ensemble(args, cfg)
        print(ensemble.describe())
        result = predict_folder(args.data_dir, args.out, ensemble, cfg, args.format, log=_err)
    failed = result.failed
    print(f"wrote {args.out}: {len(result.outcomes)} slide(s), {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score a submission against a solution with the format's metric; the last line is the score."""
    from hubkit.formats.registry import detect_format, get_format

    fmt = get_format(args.format) if args.format else detect_format(args.submission)
    if args.class_name:
        fmt = get_format(fmt.name, scored_class=args.class_name)
    result = fmt.score(args.submission, args.solution)
    print(result.per_image.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for note in result.notes:
        print(note)
    print(result.summary())
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    """Glomerulus records, detection metrics, density and a report for each predicted slide."""
    from hubkit.analysis.run import analyze
    from hubkit.models.zoo import card_kinds

    cfg = _predict_config(args)
    kinds = card_kinds(args.zoo) if args.zoo else set()
    models = None
    if "segmenter" in kinds:
        models = _source(args) if args.engine == "dask" else _ensemble(args, cfg)
    classifier = args.classifier or (args.zoo if "classifier" in kinds else None)
    analyze(args.slide_or_dir, args.pred, args.truth, models, cfg, args.iou, args.pixel_size, args.out,
            engine=args.engine, workers=args.workers, scheduler=args.scheduler, classifier=classifier)
    print(f"wrote {args.out}/summary.csv and one report folder per slide")
    return 0


def cmd_classify_glomeruli(args: argparse.Namespace) -> int:
    """Score a folder of glomerulus crops with a classifier; writes ``crop,p_sclerotic``."""
    from hubkit._io import atomic_write
    from hubkit.analysis.sclerosis import GlomerulusClassifier, score_crop_folder

    classifier = GlomerulusClassifier.load(args.zoo, args.model)
    scores = score_crop_folder(args.crops, classifier)
    with atomic_write(args.out, newline="") as f:
        scores[["crop", "p_sclerotic"]].to_csv(f, index=False, float_format="%.6f")
    called = int(scores["sclerotic"].sum())
    print(f"wrote {args.out}: {len(scores)} crop(s), {called} called {classifier.card.class_names[0]} "
          f"(p >= {classifier.threshold:g}, {classifier.card.name})")
    return 0


def cmd_make_competition(args: argparse.Namespace) -> int:
    """Build a local competition folder from real tiles with masks (without ``--tiles``: from the
    Vanderbilt tiles the shipped models never trained on)."""
    from hubkit.errors import MissingInputError
    from hubkit.testbed import FULL, SMALL, STARTER_HELD_OUT, default_tiles_dir, make_competition, sample_tiles_dir

    tiles = Path(args.tiles) if args.tiles else default_tiles_dir()
    if tiles is None and not args.small:
        raise MissingInputError("the three large slides need 32 real tiles: the shared data (../shared/data or "
                                "$HUBKIT_DATA) was not found; pass --tiles DIR, or --small for the tiles hubkit ships")
    table = make_competition(args.out, tiles or sample_tiles_dir(), SMALL if args.small else FULL,
                             tile_range=None if args.tiles else STARTER_HELD_OUT)
    for row in table.itertuples():
        print(f"  {row.id}: {row.height} x {row.width} px, layout {row.layout}, {row.source}")
    print(f"wrote {args.out}/ (test/<id>.tiff, sample_submission.csv, solution.csv)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job end to end: a local competition of real tissue, predict, score, overlay, analyse."""
    from hubkit.testbed.demo import run_demo

    cfg = _predict_config(args)
    result = run_demo(args.out, _ensemble(args, cfg), cfg, args.tiles, args.classifier)
    for row in result.score.per_image.itertuples():
        slide = result.slides.set_index("id").loc[row.id]
        print(f"  {row.id}: Dice {row.dice:.4f}  ({slide.height} x {slide.width} px)  overlay {result.overlays[row.id]} "
              f"(red truth, green prediction)  report {result.reports[row.id]}")
    print(f"{result.score.summary()} ({result.label})")
    return 1 if result.run.failed else 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train the folds of a config file; each fold's best epoch becomes a zoo model."""
    from hubkit.training import apply_overrides, load_config, run, summary_json

    items = [*(args.set or []), *([f"train_folds={args.fold}"] if args.fold else [])]
    results = run(apply_overrides(load_config(args.config), items), progress=not args.quiet, fresh=args.fresh)
    if args.summary and os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 writes
        summary_json(results, args.summary)
    return 0


def cmd_soup(args: argparse.Namespace) -> int:
    """Average fine-tunes of one model into one zoo model (see hubkit.models.soup)."""
    from hubkit.errors import CardError
    from hubkit.models.soup import average_models

    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError:
        raise CardError(f"--weights {args.weights!r}: give comma-separated numbers, one per model") from None
    card = average_models(args.models, args.out, args.name, weights, notes=args.notes)
    print(f"soup of {len(args.models)} models -> {card}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Score fold models on their held-out fold (see hubkit.training.validate); --record keeps it on the card."""
    from hubkit.inference.config import resolve_device
    from hubkit.models.zoo import model_cards
    from hubkit.training.validate import record_fold_score, validate_fold_model, validate_out_of_fold

    device, models = str(resolve_device(args.device)), model_cards(args.models)
    oof = validate_out_of_fold(models, args.tiles, device) if args.oof else None  # every card checked first
    scores = oof.scores if oof else (validate_fold_model(model, args.tiles, device) for model in models)
    for model, score in zip(models, scores):
        where = f"; recorded in {record_fold_score(model, score)}" if args.record else ""
        print(f"{model}: fold {score.fold}, {score.tiles} held-out tiles: Dice {score.dice:.4f} pooled, "
              f"{score.dice_per_tile:.4f} per tile{where}")
    if oof:
        print(f"out of fold: folds {', '.join(map(str, oof.folds))} of {oof.of}, {oof.tiles} tiles: "
              f"Dice {oof.dice:.4f} pooled, {oof.dice_per_tile:.4f} per tile{_not_given(oof.missing)}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Score probability cuts out of fold (see hubkit.training.calibrate); prints a table and the best cut."""
    from hubkit.inference.config import resolve_device
    from hubkit.models.zoo import model_cards
    from hubkit.training.calibrate import calibrate_out_of_fold

    result = calibrate_out_of_fold(model_cards(args.models), args.thresholds, args.seeds, args.tiles, args.tta,
                                   str(resolve_device(args.device)))
    print(f"out of fold: folds {', '.join(map(str, result.folds))} of {result.of}, {result.tiles} tiles, "
          f"TTA {result.tta}{_not_given(result.missing)}")
    print(f"{'threshold':>9} {'seed cut':>8} {'Dice':>7} {'per tile':>8} {'F1':>6}"
          + "".join(f" {f'fold {k}':>7}" for k in result.folds))
    for cut in result.cuts:
        mark = "  the cards'" if cut == result.cards else ""
        print(f"{cut.threshold:>9.3g} {_seed(cut):>8} {cut.dice:>7.4f} {cut.dice_per_tile:>8.4f} {cut.f1:>6.3f}"
              + "".join(f" {d:>7.4f}" for d in cut.fold_dice) + mark)
    best, cards = result.best, result.cards
    flags = f"--threshold {best.threshold:g}" + (f" --seed-threshold {best.seed_threshold:g}" if best.seed_threshold
                                                 else "")
    if best == cards:
        print(f"best: {flags}, the cards' own: Dice {best.dice:.4f} pooled out of fold")
    else:
        print(f"best: {flags}: Dice {best.dice:.4f} pooled out of fold, {best.dice - cards.dice:+.4f} over the cards' "
              f"{cards.threshold:g}, above it on {result.wins(best)} of {len(result.folds)} folds")
    return 0


def _seed(cut) -> str:
    return "-" if cut.seed_threshold is None else f"{cut.seed_threshold:g}"


def _not_given(missing: tuple[int, ...]) -> str:
    """The end of an out-of-fold line that names the split's folds no model was given for (empty if none)."""
    if not missing:
        return ""
    return f"; fold{'s' * (len(missing) > 1)} {', '.join(map(str, missing))} not given: not every tile is scored"


def cmd_wheelhouse(args: argparse.Namespace) -> int:
    """Build the offline wheel folder for Kaggle (see hubkit.kaggle.wheelhouse)."""
    from hubkit.kaggle.metadata import write_dataset_metadata
    from hubkit.kaggle.wheelhouse import build_wheelhouse

    wheels = build_wheelhouse(args.out, args.wheel_set, args.image, args.source, download=not args.no_download)
    if args.dataset_id:
        write_dataset_metadata(args.out, args.dataset_id, f"hubkit {args.wheel_set} wheels")
    print(f"{len(wheels)} wheels in {args.out}")
    return 0


def cmd_pack_zoo(args: argparse.Namespace) -> int:
    """Write a zoo's models flat into a Kaggle dataset folder with dataset-metadata.json."""
    from hubkit.kaggle.datasets import pack_zoo

    packed = pack_zoo(args.zoo, args.out, args.dataset_id, args.title)
    print(f"packed {len(packed)} model(s) into {args.out}/ with dataset-metadata.json")
    return 0


def cmd_pack_source(args: argparse.Namespace) -> int:
    """Archive the hubkit source into a Kaggle dataset folder with dataset-metadata.json."""
    from hubkit.kaggle.datasets import pack_source
    from hubkit.kaggle.wheelhouse import source_dir

    archive = pack_source(source_dir(args.source), args.out, args.dataset_id)
    print(f"{archive} ({archive.stat().st_size / 1e6:.1f} MB) with dataset-metadata.json")
    return 0


COMMANDS = {
    "info": cmd_info, "zoo": cmd_zoo, "train": cmd_train, "soup": cmd_soup, "validate": cmd_validate,
    "calibrate": cmd_calibrate,
    "predict": cmd_predict, "score": cmd_score,
    "analyze": cmd_analyze, "classify-glomeruli": cmd_classify_glomeruli, "wheelhouse": cmd_wheelhouse,
    "pack-zoo": cmd_pack_zoo,
    "pack-source": cmd_pack_source,
    "make-competition": cmd_make_competition, "demo": cmd_demo,
}
