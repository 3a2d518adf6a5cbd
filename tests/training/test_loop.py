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
    from hubkit.training.loop import evaluate

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
    scores = evaluate(Oracle(), loader, torch.device("cpu"), torch.bfloat16, amp=False)
    assert scores["dice"] == pytest.approx(1.0) and scores["dice_per_tile"] == pytest.approx(1.0)
