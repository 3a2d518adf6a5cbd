import subprocess
import sys

import pandas as pd
import pytest
import torch

from hubkit.models import zoo
from hubkit.training import TrainConfig, read_index, train_fold


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
        "import hubkit.training, hubkit.models\n"
        "hubkit.models.create_model('Unet', 'tu-tf_efficientnet_lite0')\n"
        "print('clean')\n"
    )
    run = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "clean" in run.stdout, run.stdout + run.stderr


def test_mixing_keeps_image_and_mask_together():
    torch.manual_seed(0)
    image = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 16, 16).clone()
    mask = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 16, 16).clone()
    from hubkit.training.loop import _mix

    for cfg in (TrainConfig(tiles="t", cutmix=1.0), TrainConfig(tiles="t", mixup=1.0)):
        mixed_image, mixed_mask = _mix(image, mask, cfg)
        assert torch.allclose(mixed_image[:, :1], mixed_mask)  # every pixel's label came with it


def test_two_class_training_without_two_class_masks_is_refused(tiny_tiles, tmp_path):
    with pytest.raises(ValueError, match=r"needs masks labelled 1 to 2; no training tile holds label\(s\) \[2\]"):
        train_fold(TrainConfig(tiles=str(tiny_tiles), out=str(tmp_path), classes=2), fold=0, progress=False)


@pytest.fixture()
def two_class_tiles(tmp_path):
    """Six synthetic 192 x 192 tiles in two groups, each with a healthy (1) and a sclerotic (2) glomerulus,
    prepared at scale 2 through `prepare_tile_folder`."""
    import cv2

    from hubkit.training.prep import prepare_tile_folder, write_index
    from tests.helpers import blobs, smooth_image

    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    for i in range(6):
        image = smooth_image((192, 192), seed=i)
        healthy, sclerotic = blobs((192, 192), [(50, 60 + i)], 30), blobs((192, 192), [(140, 130 - i)], 30)
        image[healthy > 0] = (230, 150, 200)
        image[sclerotic > 0] = (120, 40, 110)
        cv2.imwrite(str(src / "images" / f"t{i * 50}.png"), image[..., ::-1])
        cv2.imwrite(str(src / "masks" / f"t{i * 50}.png"), healthy + 2 * sclerotic)
    out = tmp_path / "tiles"
    write_index(out, prepare_tile_folder(src, out, "synthetic", scale=2.0, group_size=150, classes=2))
    return out


def test_two_class_masks_keep_their_labels_through_preparation(two_class_tiles):
    import numpy as np

    from hubkit.slides.images import read_label_mask, read_mask

    index, root = read_index(two_class_tiles)
    for rel in index["mask"]:
        labels = read_label_mask(root / rel, 2)
        assert labels.shape == (96, 96) and set(np.unique(labels)) == {0, 1, 2}
        assert np.array_equal(read_mask(root / rel), labels > 0)  # one-class readers see any glomerulus


def test_a_two_class_head_trains_and_is_scored_on_any_glomerulus(two_class_tiles, tmp_path):
    cfg = TrainConfig(tiles=str(two_class_tiles), out=str(tmp_path), name="t2", classes=2, pretrained="", crop=64,
                      batch_size=2, epochs=1, samples_per_epoch=4, folds=2, workers=0, device="cpu")
    train_fold(cfg, fold=0, progress=False)
    model, card = zoo.load(tmp_path / "t2-fold0")
    assert card.classes == 2 and card.class_names == ["healthy", "unhealthy"]
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_validation_dice_counts_a_glomerulus_of_either_class(two_class_tiles):
    import numpy as np

    from hubkit.slides.images import read_label_mask
    from hubkit.training.data import ValidTiles
    from hubkit.training.loop import evaluate, valid_predictions

    index, root = read_index(two_class_tiles)
    labels = [read_label_mask(root / rel, 2) for rel in index["mask"]]

    class Oracle(torch.nn.Module):  # healthy glomeruli in channel 0, sclerotic ones in channel 1
        def __init__(self):
            super().__init__()
            self.k = 0
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            lab = torch.from_numpy(np.pad(labels[self.k], ((0, x.shape[2] - 96), (0, x.shape[3] - 96))))
            self.k += 1
            return torch.stack([(lab == 1).float(), (lab == 2).float()])[None] * 20 - 10

    loader = torch.utils.data.DataLoader(ValidTiles(index, root, (0.5,) * 3, (0.5,) * 3, classes=2), 1)
    for (pred, mask), lab in zip(valid_predictions(Oracle(), loader, torch.device("cpu"), amp=False),
                                 labels, strict=True):
        assert not torch.is_inference_mode_enabled()  # the caller's mode between tiles, not the generator's
        assert pred.shape == (1, *lab.shape) and torch.equal(pred[0], torch.from_numpy(lab > 0).float())
    scores = evaluate(Oracle(), loader, torch.device("cpu"), amp=False)
    assert scores["dice"] == pytest.approx(1.0) and scores["dice_per_tile"] == pytest.approx(1.0)


def _tiny(tiles, out, **extra) -> TrainConfig:
    return TrainConfig(tiles=str(tiles), out=str(out), name="t", crop=96, batch_size=4, epochs=1, samples_per_epoch=8,
                       folds=2, workers=0, strength=0.0, device="cpu", **extra)


def test_fine_tuning_starts_from_the_init_model_and_keeps_its_normalisation(tiny_tiles, tmp_path):
    train_fold(_tiny(tiny_tiles, tmp_path / "first", pretrained=""), fold=0, progress=False)
    start, start_card = zoo.load(tmp_path / "first" / "t-fold0")
    start_card.mean, start_card.std = (0.5, 0.4, 0.6), (0.2, 0.25, 0.15)  # a model trained on other tiles
    zoo.save(start, start_card, tmp_path / "init", dtype="float16")
    train_fold(_tiny(tiny_tiles, tmp_path / "tuned", init=str(tmp_path / "init"), lr=1e-9), fold=0, progress=False)
    tuned, card = zoo.load(tmp_path / "tuned" / "t-fold0")
    assert (card.mean, card.std) == ((0.5, 0.4, 0.6), (0.2, 0.25, 0.15))
    assert "fine-tuned from" in card.notes and card.extra["config"]["init"] == str(tmp_path / "init")
    before, after = start.state_dict(), tuned.state_dict()
    weights = [k for k, v in before.items() if v.is_floating_point() and "running" not in k]
    assert all(torch.allclose(before[k], after[k], atol=1e-3) for k in weights)  # lr 1e-9: still the init's


@pytest.mark.parametrize(
    "card_changes, fold, message",
    [
        ({"encoder": "tu-tf_efficientnet_lite1"}, 0, r"does not match the config: encoder 'tu-tf_efficientnet_lite1'"),
        ({"classes": 2}, 0, r"classes 2 \(config: 1\)"),
        ({"extra_fold": 0}, 1, r"trained as fold 0 of .*saw fold 1's validation tiles; fine-tune it as fold 0 only"),
    ],
)
def test_an_init_model_that_does_not_fit_or_saw_the_fold_is_refused(tiny_tiles, tmp_path, card_changes, fold,
                                                                     message):
    from hubkit.errors import ConfigError
    from hubkit.models.card import ModelCard
    from hubkit.models.registry import create_model

    cfg = _tiny(tiny_tiles, tmp_path)
    fields = {"architecture": "Unet", "encoder": cfg.encoder, "classes": 1, **card_changes}
    extra = {}
    if "extra_fold" in fields:
        extra = {"fold": fields.pop("extra_fold"), "config": {"tiles": cfg.tiles, "folds": cfg.folds, "seed": cfg.seed}}
    model = create_model(fields["architecture"], fields["encoder"], fields["classes"])
    names = {"class_names": ["healthy", "unhealthy"]} if fields["classes"] == 2 else {}
    zoo.save(model, ModelCard(**fields, **names, scale=2.0, tile_size=96, extra=extra), tmp_path / "init")
    with pytest.raises(ConfigError, match=message):
        train_fold(_tiny(tiny_tiles, tmp_path, init=str(tmp_path / "init")), fold=fold, progress=False)


@pytest.mark.parametrize(
    "sources_train, sources_valid, train_sources, valid_sources",
    [
        ([], [], {"lab_a", "lab_b"}, {"lab_a", "lab_b"}),
        (["lab_a"], ["lab_b"], {"lab_a"}, {"lab_b"}),  # cross-source: one lab in, the other out
        (["lab_b"], [], {"lab_b"}, {"lab_a", "lab_b"}),
    ],
)
def test_sources_pick_the_training_and_validation_tiles(tiny_tiles, tmp_path, sources_train, sources_valid,
                                                        train_sources, valid_sources):
    import shutil

    from hubkit.training.distributed import Ranks
    from hubkit.training.loop import _fold_tiles

    tiles = tmp_path / "tiles"
    shutil.copytree(tiny_tiles, tiles)
    index = pd.read_csv(tiles / "index.csv")
    index["source"] = ["lab_a" if k % 2 else "lab_b" for k in range(len(index))]
    index.to_csv(tiles / "index.csv", index=False)
    cfg = _tiny(tiles, tmp_path, sources_train=sources_train, sources_valid=sources_valid)
    train, valid, _, _ = _fold_tiles(cfg, 0, Ranks())
    assert set(train.index["source"]) == train_sources and set(valid.index["source"]) == valid_sources


def test_a_fold_left_without_tiles_of_the_asked_sources_is_named(tiny_tiles, tmp_path):
    from hubkit.errors import DataError

    with pytest.raises(DataError, match=r"0 training and \d+ validation tiles \(sources_train \['aidpath'\].*"
                                        r"the tile set's sources: vanderbilt"):
        train_fold(_tiny(tiny_tiles, tmp_path, sources_train=["aidpath"]), fold=0, progress=False)


class _Pixelwise(torch.nn.Module):
    """Each pixel's logit from that pixel alone: the same map under every flip and turn."""

    def forward(self, x):
        return x[:, :1] * 4


class _Ramp(torch.nn.Module):
    """Logits rising left to right whatever the input: a model that is not flip-equivariant."""

    def forward(self, x):
        return torch.linspace(-6, 6, x.shape[-1]).expand(x.shape[0], 1, *x.shape[-2:])


@pytest.mark.parametrize("tta, symmetric", [("none", False), ("flip", True), ("flip2", False), ("d4", True)])
def test_tta_probabilities_are_averaged_over_the_transforms_each_undone(tiny_tiles, tta, symmetric):
    from hubkit.training.data import ValidTiles
    from hubkit.training.loop import valid_probabilities

    index, root = read_index(tiny_tiles)
    loader = torch.utils.data.DataLoader(ValidTiles(index.iloc[:2], root, (0.5,) * 3, (0.5,) * 3), 1)

    def probs(model, tta):
        return [p for p, _ in valid_probabilities(model, loader, torch.device("cpu"), False, tta)]

    for plain, averaged in zip(probs(_Pixelwise(), "none"), probs(_Pixelwise(), tta), strict=True):
        assert torch.allclose(plain, averaged, atol=1e-6)  # every transform undone exactly
    for prob in probs(_Ramp(), tta):  # the left-right flip's inverse mirrors the ramp; averaged, it is symmetric
        assert torch.allclose(prob, prob.flip(-1), atol=1e-6) == symmetric
        assert ((prob >= 0) & (prob <= 1)).all()
