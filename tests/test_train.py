import shutil
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from hubkit import zoo
from hubkit.augment import context_size, train_transforms
from hubkit.losses import dice_loss, get_loss, lovasz_hinge
from hubkit.prep import folds_by_group, prepare_tile_folder, read_index, write_index
from hubkit.train import TrainConfig, load_config, train_fold


@pytest.mark.parametrize(
    "groups, n_folds",
    [
        (["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"] * 2, 2),
        ([f"g{i // 4}" for i in range(40)], 4),
        (["x", "y", "z", "w", "v"], 5),
    ],
)
def test_folds_never_share_a_group(groups, n_folds):
    folds = folds_by_group(groups, n_folds)
    table = pd.DataFrame({"group": groups, "fold": folds})
    assert (table.groupby("group")["fold"].nunique() == 1).all()
    assert set(folds) == set(range(n_folds))


def test_augmentations_keep_image_and_mask_aligned():
    rng = np.random.default_rng(0)
    size = context_size(128)
    agreement = []
    transforms = train_transforms(128)
    for seed in range(20):
        transforms.set_random_seed(seed)
        mask = np.zeros((size, size), np.uint8)
        for _ in range(3):
            r, c, rad = rng.integers(20, size - 20, 2).tolist() + [int(rng.integers(8, 30))]
            yy, xx = np.ogrid[:size, :size]
            mask[(yy - r) ** 2 + (xx - c) ** 2 < rad**2] = 1
        mask[: size // 3, : size // 4] = 1  # an asymmetric block: flips and turns must move both alike
        image = np.repeat((mask * 255)[..., None], 3, axis=2)
        out = transforms(image=image, mask=mask)
        assert out["image"].shape == (128, 128, 3) and out["mask"].shape == (128, 128)
        agreement.append(((out["image"].mean(axis=2) > 127) == (out["mask"] > 0)).mean())
    assert min(agreement) > 0.97


@pytest.mark.parametrize("name", ["bce", "dice", "lovasz", "bce+dice", "bce+lovasz"])
def test_losses_prefer_the_right_answer(name):
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:12, 4:12] = 1
    loss = get_loss(name)
    good, bad = loss(target * 20 - 10, target), loss(-(target * 20 - 10), target)
    assert torch.isfinite(good) and good < bad


def test_perfect_predictions_cost_nothing():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:5, 2:5] = 1
    assert dice_loss(target * 40 - 20, target) < 1e-3
    assert lovasz_hinge(target * 40 - 20, target) == 0


def test_unknown_loss_lists_the_valid_names():
    with pytest.raises(ValueError, match="bce, dice, lovasz"):
        get_loss("bce+focal")


def test_config_errors_name_the_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"tiles": "t", "learning_rate": 1}')
    with pytest.raises(ValueError, match=r"c\.json: unknown config keys \['learning_rate'\]"):
        load_config(path)


@pytest.fixture(scope="module")
def tiny_tiles(data_dir, tmp_path_factory):
    """Eight real Vanderbilt tiles in two regions, at 1/4 scale."""
    src = data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200"
    folder = tmp_path_factory.mktemp("src")
    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    stems = sorted(p.stem for p in (src / "images").glob("*.jpg"))
    for stem in stems[:4] + stems[-4:]:
        shutil.copy(src / "images" / f"{stem}.jpg", folder / "images")
        shutil.copy(src / "masks" / f"{stem}.png", folder / "masks")
    out = tmp_path_factory.mktemp("tiles")
    write_index(out, prepare_tile_folder(folder, out, "vanderbilt", scale=4.0, group_size=100))
    return out


def test_tile_prep_writes_an_index_with_groups(tiny_tiles):
    index, _ = read_index(tiny_tiles)
    assert len(index) == 8 and index["group"].nunique() == 2
    assert (index["height"] == 300).all() and (index["width"] == 400).all()
    assert (index["glomerulus_fraction"] > 0).all()


def test_a_few_steps_reduce_the_loss_and_save_a_loadable_model(tiny_tiles, tmp_path):
    cfg = TrainConfig(tiles=str(tiny_tiles), out=str(tmp_path), name="t", crop=96, batch_size=4, epochs=3,
                      samples_per_epoch=24, lr=2e-3, folds=2, workers=0, strength=0.0, device="cpu")
    result = train_fold(cfg, fold=0, progress=False)
    log = pd.read_csv(tmp_path / "t-fold0.log.csv")
    assert log["train_loss"].iloc[-1] < log["train_loss"].iloc[0]
    model, card = zoo.load(tmp_path / "t-fold0")
    assert card.cv_score == pytest.approx(result["dice"], abs=1e-5) == pytest.approx(log["valid_dice"].max(), abs=1e-5)
    assert card.scale == 2.0 and card.dtype == "float16" and card.extra["fold"] == 0
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_importing_the_training_stack_touches_no_network():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise SystemExit('network access: ' + repr(a))\n"
        "socket.socket.connect = refuse\nsocket.getaddrinfo = refuse\n"
        "import hubkit.train, hubkit.augment, hubkit.zoo\n"
        "hubkit.zoo.create_model('Unet', 'tu-tf_efficientnet_lite0')\n"
        "print('clean')\n"
    )
    run = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "clean" in run.stdout, run.stdout + run.stderr


def test_mixing_keeps_image_and_mask_together():
    torch.manual_seed(0)
    image = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 16, 16).clone()
    mask = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 16, 16).clone()
    from hubkit.train import _mix

    for cfg in (TrainConfig(tiles="t", cutmix=1.0), TrainConfig(tiles="t", mixup=1.0)):
        mixed_image, mixed_mask = _mix(image, mask, cfg)
        assert torch.allclose(mixed_image[:, :1], mixed_mask)  # every pixel's label came with it


def test_two_class_training_without_two_class_masks_is_refused(tiny_tiles, tmp_path):
    with pytest.raises(ValueError, match="needs masks labelled 1 and 2"):
        train_fold(TrainConfig(tiles=str(tiny_tiles), out=str(tmp_path), classes=2), fold=0, progress=False)


def test_tiles_from_competition_slides_with_rle_or_polygons(tmp_path, data_dir):
    from hubkit import rle as rle_mod
    from hubkit.annotations import mask_to_features, save_geojson
    from hubkit.prep import prepare_slides
    from hubkit.sample import find_tile_pairs, mosaic_slide, read_mask
    from hubkit.tiffwrite import write_slide

    pairs = find_tile_pairs(data_dir / "aidpath-pas-glomeruli-1024")
    comp = tmp_path / "comp"
    (comp / "train").mkdir(parents=True)
    truth = {}
    for slide_id, chunk in (("a", pairs[:2]), ("b", pairs[2:4])):
        rgb, mask = mosaic_slide(chunk, columns=2)
        write_slide(comp / "train" / f"{slide_id}.tiff", rgb)
        truth[slide_id] = mask
    pd.DataFrame({"id": ["a"], "encoding": [rle_mod.encode(truth["a"])]}).to_csv(comp / "train.csv", index=False)
    save_geojson(comp / "train" / "b.json", mask_to_features(truth["b"]))  # b has polygons only
    out = tmp_path / "tiles"
    rows = prepare_slides(comp, out, scale=2.0, tile=256, random_share=0.0)
    assert {r["group"] for r in rows} == {"a", "b"}
    for r in rows:
        slide_id, row, col = r["image"].split("/")[1][:-4].split("_")
        expected = truth[slide_id][int(row) : int(row) + 512, int(col) : int(col) + 512]
        got = read_mask(out / r["mask"])
        assert got.any() and got.shape == (256, 256)
        small = cv2.resize(expected.astype(np.float32), (256, 256), interpolation=cv2.INTER_AREA) >= 0.5
        assert (got == small).mean() > 0.99


def test_training_crops_are_reproducible_and_favour_glomeruli(tiny_tiles):
    from hubkit.data import TrainTiles

    index, root = read_index(tiny_tiles)
    a = TrainTiles(index, root, 64, (0.5,) * 3, (0.2,) * 3, samples=40, glomerulus_p=1.0, seed=3)
    b = TrainTiles(index, root, 64, (0.5,) * 3, (0.2,) * 3, samples=40, glomerulus_p=1.0, seed=3)
    for item in (0, 7):
        (xa, ma), (xb, mb) = a[item], b[item]
        assert torch.equal(xa, xb) and torch.equal(ma, mb)
    a.set_epoch(1)
    assert not torch.equal(a[0][0], b[0][0])
    # centred on a glomerulus pixel: the crop centre is foreground nearly always
    centres = [float(a[i][1][0, 32, 32]) for i in range(40)]
    assert np.mean(centres) > 0.8


def test_each_epoch_draws_new_crops_through_worker_processes(tiny_tiles):
    from hubkit.data import TrainTiles
    from hubkit.train import train_loader

    index, root = read_index(tiny_tiles)
    ds = TrainTiles(index, root, 32, (0.5,) * 3, (0.2,) * 3, samples=4, seed=0)
    loader = train_loader(ds, TrainConfig(tiles=str(tiny_tiles), batch_size=4, workers=1))
    batches = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        batches.append(next(iter(loader))[0])
    assert not torch.equal(batches[0], batches[1])
