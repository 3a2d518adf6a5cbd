import subprocess
import sys

import pandas as pd
import pytest
import torch

from hubkit.models import zoo
from hubkit.training import TrainConfig, train_fold


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
    with pytest.raises(ValueError, match="needs masks labelled 1 and 2"):
        train_fold(TrainConfig(tiles=str(tiny_tiles), out=str(tmp_path), classes=2), fold=0, progress=False)
