import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hubkit.analysis.glomeruli import components
from hubkit.analysis.sclerosis import NON_SCLEROTIC, SCLEROTIC, GlomerulusClassifier, score_crop_folder
from hubkit.analysis.slide import analyze_slide
from hubkit.annotations import CLASS_COLOURS, load_features, rasterize
from hubkit.cli import main
from hubkit.errors import CardError, DataError, MissingInputError
from hubkit.formats import rle
from hubkit.formats.metrics import roc_auc
from hubkit.models import create_model, zoo
from hubkit.models.classifier import crop_glomerulus
from hubkit.slides import write_slide
from hubkit.slides.images import read_image, read_mask
from tests.helpers import blobs, smooth_image
from tests.models.test_classifier import classifier_card

#: The classifier the repository ships outside the MIT package (CC BY-NC-SA 4.0).
SHIPPED = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> Path:
    """A random resnet18 classifier (threshold 0.5) in a zoo folder."""
    import torch

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("zoo") / "gs"
    zoo.save(create_model("Classifier", "resnet18").eval(), classifier_card(), folder)
    return folder.parent


@pytest.fixture(scope="module")
def shipped() -> GlomerulusClassifier:
    if not any(SHIPPED.glob("*/card.json")):
        pytest.skip(f"the trained classifier is not in {SHIPPED} (a source checkout ships it)")
    return GlomerulusClassifier.load(SHIPPED)


def test_analyze_cuts_each_glomerulus_exactly_as_the_training_crops_were_cut(tmp_path):
    shape = (700, 900)
    image = smooth_image(shape, seed=4)
    mask = blobs(shape, [(100, 120), (350, 450), (600, 800)], 40) | blobs(shape, [(380, 480)], 30)
    seen = []

    def record(boxes):
        crops = []
        for win, box_mask in boxes:
            crops.append(crop_glomerulus(image[win.row : win.row + win.height, win.col : win.col + win.width],
                                         box_mask, 64))
        seen.extend(crops)
        return np.linspace(0.1, 0.9, len(boxes))

    analysis = analyze_slide(shape, rle.encode(mask), sclerosis=record, sclerosis_threshold=0.5,
                             window=512, margin=128)
    labels = components(mask)
    expected = [crop_glomerulus(image, labels == k, 64) for k in range(1, labels.max() + 1)]
    key = lambda pair: pair[0].tobytes()  # noqa: E731
    assert len(seen) == len(expected) == 3  # the touching pair of discs is one glomerulus
    for got, want in zip(sorted(seen, key=key), sorted(expected, key=key)):
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    table = analysis.predicted
    assert list(table["sclerotic"]) == list(table["p_sclerotic"] >= 0.5)
    assert [f.label for f in analysis.features] == [SCLEROTIC if s else NON_SCLEROTIC for s in table["sclerotic"]]


def test_a_training_crop_cut_again_is_itself(data_dir):
    folder = data_dir / "aidpath-glomerulosclerosis-crops"
    for crop in pd.read_csv(folder / "labels.csv")["crop"][::97]:
        image, mask = read_image(folder / "images" / f"{crop}.jpg"), read_mask(folder / "masks" / f"{crop}.png")
        again, _ = crop_glomerulus(image, mask, 224)
        assert np.array_equal(again, image), crop  # the crops' masks touch all four edges


def test_analyze_writes_the_class_into_csv_geojson_summary_and_report(tmp_path, data_dir, tiny_classifier):
    tiles = data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200"
    stem = sorted(p.stem for p in (tiles / "images").glob("*.jpg"))[0]
    write_slide(tmp_path / "tile.tiff", read_image(tiles / "images" / f"{stem}.jpg"))
    mask = read_mask(tiles / "masks" / f"{stem}.png")
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "tile.tiff"), "--pred", str(tiles / "masks" / f"{stem}.png"),
                 "--classifier", str(tiny_classifier), "--out", str(out)]) == 0
    table = pd.read_csv(out / "tile" / "glomeruli.csv")
    assert len(table) == components(mask).max() > 0
    assert table["p_sclerotic"].between(0, 1).all() and list(table["sclerotic"]) == list(table["p_sclerotic"] >= 0.5)
    doc = json.loads((out / "tile" / "glomeruli.geojson").read_text())
    for feature, row in zip(doc["features"], table.itertuples()):
        name = SCLEROTIC if row.sclerotic else NON_SCLEROTIC
        assert feature["properties"]["classification"] == {"name": name, "color": list(CLASS_COLOURS[name])}
        assert feature["properties"]["measurements"]["p_sclerotic"] == pytest.approx(row.p_sclerotic)
    # the classified polygons still read back as glomeruli (QuPath derived classes)
    features = load_features(out / "tile" / "glomeruli.geojson")
    assert np.array_equal(rasterize(features, mask.shape, labels=["glomerulus"]), mask != 0)
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[0, "sclerotic"] == table["sclerotic"].sum()
    assert summary.loc[0, "percent_sclerotic"] == pytest.approx(100 * table["sclerotic"].mean())
    page = (out / "tile" / "report.html").read_text()
    assert "globally sclerotic" in page
    for name in ("sclerotic.png", "non_sclerotic.png"):
        assert name in page and (out / "tile" / name).stat().st_size > 100


def test_the_shipped_classifier_ranks_real_crops(shipped, data_dir):
    folder = data_dir / "aidpath-glomerulosclerosis-crops"
    labels = pd.read_csv(folder / "labels.csv").groupby("label").head(20)
    images = [read_image(folder / "images" / f"{c}.jpg") for c in labels["crop"]]
    masks = [read_mask(folder / "masks" / f"{c}.png") for c in labels["crop"]]
    p = shipped.score(images, masks)
    assert shipped.card.licence.startswith("CC BY-NC-SA 4.0") and shipped.card.kind == "classifier"
    # crops it trained on: a check that the shipped weights and their card load and agree, not a CV score
    assert roc_auc((labels["label"] == "sclerotic").astype(int), p) > 0.95


def test_classify_glomeruli_writes_one_score_per_crop(tmp_path, tiny_classifier, data_dir, capsys):
    folder = data_dir / "aidpath-glomerulosclerosis-crops"
    crops = tmp_path / "crops"
    crops.mkdir()
    names = list(pd.read_csv(folder / "labels.csv")["crop"][:5])
    for name in names:
        (crops / f"{name}.jpg").write_bytes((folder / "images" / f"{name}.jpg").read_bytes())
    args = ["classify-glomeruli", str(crops), "--zoo", str(tiny_classifier), "--out", str(tmp_path / "s.csv")]
    assert main(args) == 0
    scores = pd.read_csv(tmp_path / "s.csv")
    assert list(scores.columns) == ["crop", "p_sclerotic"] and sorted(scores["crop"]) == sorted(names)
    assert scores["p_sclerotic"].between(0, 1).all()
    assert "5 crop(s)" in capsys.readouterr().out


def _folder(tmp_path, how):
    folder = tmp_path / "crops"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    if how != "no images":
        write = __import__("cv2").imwrite
        write(str(folder / "images" / "a.png"), np.full((30, 40, 3), 200, np.uint8))
        if how == "mask of another size":
            write(str(folder / "masks" / "a.png"), np.full((30, 30), 255, np.uint8))
        elif how == "empty mask":
            write(str(folder / "masks" / "a.png"), np.zeros((30, 40), np.uint8))
    return folder


@pytest.mark.parametrize("how, inputs, error, message", [
    ("no images", "rgb", MissingInputError, "no crop images"),
    ("mask of another size", "rgb", DataError, "differ in size"),
    ("empty mask", "rgb", DataError, "empty glomerulus mask"),
    ("no mask", "rgb+mask", DataError, "takes the glomerulus mask"),
])
def test_crop_folders_that_cannot_be_scored_are_refused(tmp_path, how, inputs, error, message):
    model = create_model("Classifier", "resnet18", in_channels=4 if inputs == "rgb+mask" else 3).eval()
    classifier = GlomerulusClassifier(model, classifier_card(inputs=inputs).validate())
    with pytest.raises(error, match=message):
        score_crop_folder(_folder(tmp_path, how), classifier)


def test_a_zoo_must_hold_the_one_classifier_asked_for(tmp_path):
    from tests.helpers import tiny_card

    zoo.save(create_model("Unet", "resnet18"), tiny_card(), tmp_path / "seg")
    with pytest.raises(CardError, match="no classifier model card"):
        GlomerulusClassifier.load(tmp_path)
    for name in ("gs-a", "gs-b"):
        zoo.save(create_model("Classifier", "resnet18"), classifier_card(name=name), tmp_path / name)
    with pytest.raises(CardError, match="several classifiers \\(gs-a, gs-b\\); name one"):
        GlomerulusClassifier.load(tmp_path)
    assert GlomerulusClassifier.load(tmp_path, "gs-b").card.name == "gs-b"
