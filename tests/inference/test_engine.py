import numpy as np
import pytest
import torch

from hubkit.errors import ModelOutputError
from hubkit.formats import rle
from hubkit.inference import PredictConfig, predict_image, predict_slide
from hubkit.slides import InMemorySlide, open_slide, write_slide
from tests.helpers import EXACT, Echo, echo, smooth_image


@pytest.mark.parametrize("mode", ["gaussian", "constant"])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.75])
@pytest.mark.parametrize("shape, tile, strip", [((75, 133), 32, 40), ((37, 29), 64, 512), ((128, 96), 32, 7)])
def test_stitched_probability_equals_the_input_at_full_scale(shape, tile, strip, overlap, mode):
    rgb = smooth_image(shape)
    cfg = PredictConfig(overlap=overlap, mode=mode, tta="d4", strip_width=strip, **EXACT)
    prob = predict_image(echo(tile=tile), rgb, cfg)[0]
    assert prob.shape == shape
    np.testing.assert_allclose(prob, rgb[..., 0] / 255, atol=1e-4)


@pytest.mark.parametrize("scale", [2, 3])
def test_downscaled_models_come_back_at_full_resolution(scale):
    import cv2

    rgb = smooth_image((150, 210))
    prob = predict_image(echo(scale=scale, tile=32), rgb, PredictConfig(overlap=0.25, strip_width=33, **EXACT))[0]
    small = InMemorySlide(rgb).read((0, 0, 150, 210), scale=scale)[..., 0].astype(np.float32) / 255
    expected = cv2.resize(small, (210, 150), interpolation=cv2.INTER_LINEAR)
    assert prob.shape == (150, 210)
    np.testing.assert_allclose(prob, expected, atol=1e-4)


def test_slide_rle_equals_thresholding_the_probability_map(tmp_path):
    rgb = smooth_image((300, 410), seed=3)
    cfg = PredictConfig(overlap=0.25, strip_width=64, **EXACT)
    models = echo(scale=2, tile=64, threshold=0.45)
    expected = rle.encode(predict_image(models, rgb, cfg)[0] > 0.45)
    path = write_slide(tmp_path / "s.tiff", rgb, layout="pages", tile=128)
    with open_slide(path) as slide:
        assert predict_slide(slide, models, cfg).output == {"predicted": expected}


def test_tiles_without_tissue_are_skipped_as_background():
    rgb = smooth_image((128, 256))
    rgb[:, 128:] = (236, 234, 238)  # glass on the right half
    calls = []

    class Counting(Echo):
        def forward(self, x):
            calls.append(x.shape[0])
            return torch.full_like(x[:, :1], 10.0)  # "glomerulus" everywhere it looks

    prob = predict_image(echo(tile=64, model=Counting()), rgb, PredictConfig(overlap=0.0, tta="none", device="cpu"))[0]
    assert sum(calls) == 4  # the 4 tissue tiles of 8
    assert prob[:, :128].min() > 0.99 and prob[:, 128:].max() == 0


def test_nan_predictions_fail_loudly():
    class Broken(Echo):
        def forward(self, x):
            return torch.full_like(x[:, :1], float("nan"))

    with pytest.raises(ModelOutputError, match="model 'echo' predicted NaN"):
        predict_image(echo(model=Broken()), smooth_image((64, 64)), PredictConfig(**EXACT))
