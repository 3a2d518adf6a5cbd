"""Glomerulosclerosis: hubkit's trained classifier against logistic regression on frozen ImageNet
features, on the same folds by slide.

The baseline is the premise of Weishaupt et al. 2025 (the crops' source): ImageNet CNN features
separate globally sclerotic glomeruli without training on them. Here they get the fairest simple
use: EfficientNet-Lite0's ImageNet features (the same offline weights hubkit fine-tunes, pooled
1280-d), standardised on the training folds, and an L2 logistic regression with balanced class
weights fitted on them per fold. hubkit's numbers are the out-of-fold probabilities its
``hubkit train`` run wrote (``<name>-oof.csv``), whose folds this script reuses crop for crop.

    hubkit train configs/glomerulosclerosis.json --set out=/tmp/gs
    python bench/bench_sclerosis.py /tmp/gs/sclerosis-lite0-oof.csv
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch


def imagenet_features(table: pd.DataFrame, size: int = 224) -> np.ndarray:
    """``(N, 1280)`` pooled EfficientNet-Lite0 ImageNet features of each crop (cut as hubkit cuts it)."""
    import timm

    from hubkit.models.classifier import classifier_input, crop_glomerulus
    from hubkit.models.pretrained import PRETRAINED, timm_state_dict
    from hubkit.slides.images import read_image, read_mask

    source = PRETRAINED["efficientnet-lite0"]
    net = timm.create_model(source.timm_name, pretrained=False)
    net.load_state_dict(timm_state_dict("efficientnet-lite0"))
    net.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(table), 64):
            rows = table.iloc[start : start + 64]
            x = np.stack([classifier_input(*crop_glomerulus(read_image(r.image), read_mask(r.mask), size),
                                           source.mean, source.std, False) for r in rows.itertuples()])
            out.append(net.forward_head(net.forward_features(torch.from_numpy(x)), pre_logits=True).numpy())
    return np.concatenate(out)


def logistic_regression(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """Weights and bias of an L2 logistic regression with balanced class weights (LBFGS, float64)."""
    xt, yt = torch.from_numpy(x.astype(np.float64)), torch.from_numpy(y.astype(np.float64))
    pos = yt.mean()
    sample = torch.where(yt > 0, 0.5 / pos, 0.5 / (1 - pos))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (sample * torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt, reduction="none")).mean()
        loss = loss + l2 / (2 * len(y)) * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.item()


def main() -> None:
    from hubkit.formats.metrics import balanced_accuracy, roc_auc, sensitivity_at_specificity
    from hubkit.testbed.data import find_data_dir
    from hubkit.training.crops import read_crop_set

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("oof", help="the <name>-oof.csv a `hubkit train` classify run wrote")
    parser.add_argument("--crops", help="the crop set (default: the shared AIDPATH crops)")
    parser.add_argument("--l2", type=float, default=1.0, help="baseline L2 strength (default: 1)")
    args = parser.parse_args()
    crops = args.crops or str(find_data_dir() / "aidpath-glomerulosclerosis-crops")
    oof = pd.read_csv(args.oof)
    table = read_crop_set(crops, "sclerotic").merge(oof[["crop", "fold", "p"]], on="crop", how="inner")
    if len(table) != len(oof):
        raise SystemExit(f"{args.oof}: {len(oof)} crops, {len(table)} of them in {crops}")
    t0 = time.time()
    feats = imagenet_features(table)
    print(f"ImageNet features of {len(table)} crops: {time.time() - t0:.0f} s")
    base = np.zeros(len(table))
    for fold in sorted(table["fold"].unique()):
        train, valid = (table["fold"] != fold).to_numpy(), (table["fold"] == fold).to_numpy()
        mu, sd = feats[train].mean(0), feats[train].std(0) + 1e-6
        w, b = logistic_regression((feats[train] - mu) / sd, table["target"].to_numpy()[train], args.l2)
        base[valid] = 1 / (1 + np.exp(-(((feats[valid] - mu) / sd) @ w + b)))
    table["baseline"] = base

    def scores(rows: pd.DataFrame, column: str) -> list[float]:
        y, p = rows["target"].to_numpy(), rows[column].to_numpy()
        return [roc_auc(y, p), balanced_accuracy(y, p, 0.5), sensitivity_at_specificity(y, p, 0.9)[0]]

    lines = []
    for fold, rows in [*table.groupby("fold"), ("pooled", table)]:
        lines.append([fold, len(rows), int(rows["target"].sum()), rows["slide"].nunique(),
                      *scores(rows, "p"), *scores(rows, "baseline")])
    cols = ["fold", "crops", "sclerotic", "slides", "hubkit AUC", "hubkit BA", "hubkit sens@90spec",
            "LR AUC", "LR BA", "LR sens@90spec"]
    report = pd.DataFrame(lines, columns=cols)
    print(report.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    folds = report[report["fold"] != "pooled"]
    for metric in ("AUC", "BA", "sens@90spec"):
        print(f"mean over folds, {metric}: hubkit {folds[f'hubkit {metric}'].mean():.4f}  "
              f"baseline {folds[f'LR {metric}'].mean():.4f}")


if __name__ == "__main__":
    main()
