import numpy as np
import pandas as pd
import pytest
import torch

from hubkit import rle
from hubkit.card import ModelCard
from hubkit.cli import main
from hubkit.competition import SlideSpec, make_competition
from hubkit.predict import PredictConfig, predict_image, predict_slide
from hubkit.slide import InMemorySlide, open_slide
from hubkit.submit import dice_from_rle, predict_folder, score, ScoreError
from hubkit.tiffwrite import write_slide


class Echo(torch.nn.Module):
    """A 'model' whose probability is the input's red channel: stitching must give it back."""

    def forward(self, x):
        return torch.logit(x[:, :1].clamp(1e-6, 1 - 1e-6))


def echo(scale=1.0, tile=64, threshold=0.5):
    card = ModelCard("Unet", "resnet18", name="echo", scale=scale, tile_size=tile, mean=(0, 0, 0), std=(1, 1, 1),
                     threshold=threshold)
    return [(Echo(), card)]


def smooth_image(shape, seed=0):
    rng = np.random.default_rng(seed)
    import cv2

    small = rng.integers(30, 226, (shape[0] // 8 + 1, shape[1] // 8 + 1, 3)).astype(np.uint8)
    big = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    big[..., 1:] = 200  # saturated enough to count as tissue everywhere
    return big


EXACT = dict(amp=False, min_tissue=0.0, device="cpu")


@pytest.mark.parametrize("mode", ["gaussian", "constant"])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.75])
@pytest.mark.parametrize("shape, tile, strip", [((75, 133), 32, 40), ((37, 29), 64, 512), ((128, 96), 32, 7)])
def test_stitched_probability_equals_the_input_at_full_scale(shape, tile, strip, overlap, mode):
    rgb = smooth_image(shape)
    cfg = PredictConfig(overlap=overlap, mode=mode, tta="d4", strip_width=strip, **EXACT)
    prob = predict_image(echo(tile=tile), rgb, cfg)
    assert prob.shape == shape
    np.testing.assert_allclose(prob, rgb[..., 0] / 255, atol=1e-4)


@pytest.mark.parametrize("scale", [2, 3])
def test_downscaled_models_come_back_at_full_resolution(scale):
    import cv2

    rgb = smooth_image((150, 210))
    prob = predict_image(echo(scale=scale, tile=32), rgb, PredictConfig(overlap=0.25, strip_width=33, **EXACT))
    small = InMemorySlide(rgb).read((0, 0, 150, 210), scale=scale)[..., 0].astype(np.float32) / 255
    expected = cv2.resize(small, (210, 150), interpolation=cv2.INTER_LINEAR)
    assert prob.shape == (150, 210)
    np.testing.assert_allclose(prob, expected, atol=1e-4)


def test_slide_rle_equals_thresholding_the_probability_map(tmp_path):
    rgb = smooth_image((300, 410), seed=3)
    cfg = PredictConfig(overlap=0.25, strip_width=64, **EXACT)
    models = echo(scale=2, tile=64, threshold=0.45)
    expected = rle.encode(predict_image(models, rgb, cfg) > 0.45)
    path = write_slide(tmp_path / "s.tiff", rgb, layout="pages", tile=128)
    with open_slide(path) as slide:
        assert predict_slide(slide, models, cfg) == expected


def test_tiles_without_tissue_are_skipped_as_background():
    rgb = smooth_image((128, 256))
    rgb[:, 128:] = (236, 234, 238)  # glass on the right half
    calls = []

    class Counting(Echo):
        def forward(self, x):
            calls.append(x.shape[0])
            return torch.full_like(x[:, :1], 10.0)  # "glomerulus" everywhere it looks

    card = echo(tile=64)[0][1]
    prob = predict_image([(Counting(), card)], rgb, PredictConfig(overlap=0.0, tta="none", device="cpu"))
    assert sum(calls) == 4  # the 4 tissue tiles of 8
    assert prob[:, :128].min() > 0.99 and prob[:, 128:].max() == 0


def test_nan_predictions_fail_loudly():
    class Broken(Echo):
        def forward(self, x):
            return torch.full_like(x[:, :1], float("nan"))

    with pytest.raises(ValueError, match="NaN"):
        predict_image([(Broken(), echo()[0][1])], smooth_image((64, 64)), PredictConfig(**EXACT))


# --- scoring -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("1 4", "1 4", 1.0),
        ("1 4", "3 4", 0.5),  # overlap 2 of 4 + 4
        ("1 2", "5 2", 0.0),
        ("", "", 1.0),
        ("", "1 3", 0.0),
        ("1 2 5 2", "2 4", 2 * 2 / 8),  # pixels {1,2,5,6} and {2,3,4,5} share 2 and 5
    ],
)
def test_dice_from_rle_matches_masks(a, b, expected):
    assert dice_from_rle(a, b) == pytest.approx(expected)
    shape = (4, 3)
    ma, mb = rle.decode(a, shape), rle.decode(b, shape)
    total = ma.sum() + mb.sum()
    assert expected == pytest.approx(1.0 if total == 0 else 2 * (ma & mb).sum() / total)


def _csv(path, header, rows):
    pd.DataFrame(rows, columns=header).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "sub_rows, message",
    [
        ([("a", "1 2")], r"ids missing \['b'\]"),
        ([("a", "1 2"), ("b", ""), ("c", "")], r"unexpected \['c'\]"),
        ([("a", "1 2"), ("b", "3 1 1 1")], r"'b \(submission\)'.*unsorted"),
        ([("a", "1 2"), ("a", ""), ("b", "")], "duplicate ids"),
    ],
)
def test_score_errors(tmp_path, sub_rows, message):
    sol = _csv(tmp_path / "sol.csv", ["id", "encoding"], [("a", "1 2"), ("b", "4 2")])
    sub = _csv(tmp_path / "sub.csv", ["id", "predicted"], sub_rows)
    with pytest.raises((ScoreError, ValueError), match=message):
        score(sub, sol)


def test_failed_slides_are_logged_and_written_empty(tmp_path):
    data = tmp_path / "comp"
    (data / "test").mkdir(parents=True)
    _csv(data / "sample_submission.csv", ["id", "predicted"], [("good", ""), ("bad", ""), ("gone", "")])
    write_slide(data / "test" / "good.tiff", smooth_image((64, 64)))
    (data / "test" / "bad.tiff").write_bytes(b"II*\x00garbage")
    logged = []

    def run(path, slide_id):
        with open_slide(path) as slide:
            return "1 5" if slide.shape else ""

    errors = predict_folder(data, tmp_path / "submission.csv", run, log=logged.append)
    sub = pd.read_csv(tmp_path / "submission.csv", dtype=str, keep_default_na=False)
    assert sub["id"].tolist() == ["good", "bad", "gone"]  # sample order, every id
    assert sub["predicted"].tolist() == ["1 5", "", ""]
    assert errors["good"] is None and "bad.tiff" in errors["bad"] and "no such file" in errors["gone"]
    assert len(logged) == 2


def test_predict_then_score_on_real_tissue_equals_in_memory_dice(data_dir, tmp_path, capsys):
    tiles = data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200"
    comp = tmp_path / "comp"
    solution = make_competition(comp, tiles, (SlideSpec(2, 2, "bands"), SlideSpec(1, 1, "pages")), first_tile="train_080")
    assert main(["predict", str(comp), "--out", str(tmp_path / "sub.csv"), "--quiet", "--tta", "none"]) == 0
    assert main(["score", str(tmp_path / "sub.csv"), str(comp / "solution.csv")]) == 0
    printed = float(capsys.readouterr().out.strip().splitlines()[-1].split()[2])
    sub = pd.read_csv(tmp_path / "sub.csv", dtype=str, keep_default_na=False)
    dices = []
    for row in solution.itertuples():
        truth = rle.decode(row.encoding, (row.height, row.width)).astype(bool)
        pred = rle.decode(sub.loc[sub["id"] == row.id, "predicted"].iloc[0], (row.height, row.width)).astype(bool)
        dices.append(2 * (truth & pred).sum() / (truth.sum() + pred.sum()))
    assert printed == pytest.approx(np.mean(dices), abs=1e-4)
    assert np.mean(dices) > 0.8  # the starter model on tissue it never trained on


def test_starter_model_is_shipped_with_a_valid_card():
    from hubkit import zoo

    (model, card), = zoo.load_zoo(zoo.default_zoo_dir())
    assert card.name == "unet-lite0-s2" and card.scale == 2 and card.cv_score > 0.9
    assert (zoo.default_zoo_dir() / card.name / card.weights_file).stat().st_size < 20e6
