import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.annotations import (
    AnnotationError,
    Feature,
    load_features,
    mask_to_features,
    rasterize,
    save_geojson,
)
from hubkit.formats.metrics import mask_dice as dice
from hubkit.slides import read_mask
from tests.helpers import load_fuzzed

SQUARE = {"type": "Polygon", "coordinates": [[[2, 1], [6, 1], [6, 4], [2, 4], [2, 1]]]}


DONUT = {
    "type": "Polygon",
    "coordinates": [[[0, 0], [9, 0], [9, 9], [0, 9], [0, 0]], [[3, 3], [6, 3], [6, 6], [3, 6], [3, 3]]],
}


def test_square_covers_the_pixels_inside_it():
    mask = rasterize([Feature(SQUARE)], (6, 8))
    expected = np.zeros((6, 8), np.uint8)
    expected[1:4, 2:6] = 1  # x = col 2..5, y = row 1..3
    assert np.array_equal(mask, expected)


def test_holes_are_excluded():
    mask = rasterize([Feature(DONUT)], (10, 10))
    assert mask.sum() == 81 - 9 and mask[4, 4] == 0


def test_window_and_scale_follow_the_slide_reading_grid():
    feats = [Feature(DONUT)]
    whole = rasterize(feats, (10, 10))
    assert np.array_equal(rasterize(feats, (10, 10), window=(2, 3, 5, 6)), whole[2:7, 3:9])
    half = rasterize(feats, (10, 10), scale=2)
    assert half.shape == (5, 5) and half[0, 0] == 1 and half[2, 2] == 0


@pytest.mark.parametrize("connectivity, components", [(8, 1), (4, 2)])
def test_mask_to_features_round_trip(connectivity, components):
    mask = np.zeros((12, 12), np.uint8)
    mask[1:5, 1:5] = 1
    mask[5:9, 5:9] = 1  # touches the first square at a corner only
    mask[2:4, 2:4] = 0  # a hole
    feats = mask_to_features(mask, connectivity=connectivity)
    assert len(feats) == components
    assert np.array_equal(rasterize(feats, mask.shape), mask)


def test_offset_and_scale_place_features_in_slide_coordinates():
    small = np.zeros((4, 4), np.uint8)
    small[1:3, 1:3] = 1
    feats = mask_to_features(small, offset=(100, 200), scale=4)
    full = rasterize(feats, (120, 220), window=(100, 200, 16, 16))
    assert full.sum() == 64 and full[4:12, 4:12].all()


def test_geojson_round_trip(tmp_path):
    mask = np.zeros((20, 30), np.uint8)
    mask[2:9, 3:12] = 1
    mask[12:18, 20:27] = 1
    path = save_geojson(tmp_path / "out.geojson", mask_to_features(mask))
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 2
    assert all(f["properties"]["objectType"] == "annotation" for f in doc["features"])
    back = load_features(path)
    assert [f.label for f in back] == ["glomerulus", "glomerulus"]
    assert np.array_equal(rasterize(back, mask.shape), mask)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "unreadable annotation file: not JSON"),
        ('{"hello": 1}', "not a list of Features"),
        ('[{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}]', "'Point' is not supported"),
        ('[{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, "x"]]]}}]', "malformed Polygon"),
        ('{"shapes": [{"label": "g", "shape_type": "circle", "points": [[0, 0], [1, 1]]}]}', "'circle'"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('[{"type": "Feature", "properties": [], "geometry": ' + json.dumps(SQUARE) + "}]",
         "feature 0: 'properties' must be an object or null, got list"),
        ('[{"type": "Feature", "properties": "ab", "geometry": ' + json.dumps(SQUARE) + "}]", "'properties' must be"),
        ('[{"type": "Feature", "properties": {}}]', "item 0 is not a GeoJSON Feature"),
        ('[{"type": "Feature", "geometry": null}]', "geometry type None is not supported"),
        ('[{"type": "Feature", "geometry": {"type": "Polygon"}}]', "malformed Polygon"),
        ('[{"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": 5}}]', "malformed MultiPolygon"),
        ('[{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [0, 1099511627776], '
         '[5, 5], [0, 0]]]}}]', "beyond the 2147483647 px"),
        ('[{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [0, 1e400], [5, 5], [0, 0]]]}}]',
         "non-finite"),
        ('{"type": "FeatureCollection", "features": {"a": 1}}', "'features' must be a list, got dict"),
        ('{"shapes": {"a": 1}}', "LabelMe 'shapes' must be a list"),
        ('{"shapes": [5]}', "LabelMe shape 0 is not an object"),
        ('{"shapes": [{"label": "g", "points": "x"}]}', "LabelMe shape 0: 'points' must be a list of \\[x, y\\]"),
        ('{"shapes": [{"label": "g", "points": [[0, 0, 0]]}]}', "'points' must be a list of"),
        ('{"shapes": [{"label": "g", "shape_type": "rectangle", "points": [[0, 0]]}]}', "a rectangle has 2 points, got 1"),
        ('{"shapes": [{"label": "g", "points": [[0, 0]]}]}', "at least 3"),
    ],
)
def test_bad_files_are_named_with_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(AnnotationError, match=message) as info:
        load_features(path)
    assert "bad.json" in str(info.value)


def test_real_competition_polygons(data_dir):
    feats = load_features(data_dir / "hubmap-kidney-aaa6a05cc" / "aaa6a05cc.json")
    assert len(feats) == 96 and {f.label for f in feats} == {"glomerulus"}
    # the documented crop holds exactly one glomerulus, covering 16.3% of it
    crop = rasterize(feats, (18484, 13013), window=(10_000, 5_150, 500, 450))
    assert abs(crop.mean() - 0.1634) < 0.003


def test_real_anatomical_structure_matches_the_stated_cortex_share(data_dir):
    folder = data_dir / "hubmap-kidney-aaa6a05cc"
    feats = load_features(folder / "aaa6a05cc-anatomical-structure.json")
    assert sorted(f.geometry["type"] for f in feats) == ["MultiPolygon", "Polygon"]
    cortex = rasterize(feats, (18484, 13013), scale=16, labels=["cortex"]).sum()
    medulla = rasterize(feats, (18484, 13013), scale=16, labels=["Medulla"]).sum()
    # HuBMAP-20-dataset_information.csv: percent_cortex 75, percent_medulla 25
    assert cortex / (cortex + medulla) == pytest.approx(0.75, abs=0.03)


def test_real_labelme_polygons_match_their_masks(data_dir):
    folder = data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200"
    scores = []
    for path in sorted((folder / "annotations_labelme").glob("*.json"))[:25]:
        feats = load_features(path)
        assert feats and all(f.label == "Glomeruli" for f in feats)
        truth = read_mask(folder / "masks" / f"{path.stem}.png")
        scores.append(dice(rasterize(feats, truth.shape), truth))
    assert min(scores) > 0.98


def test_features_to_rle_equals_encoding_the_whole_raster(data_dir):
    from hubkit.annotations import features_to_rle
    from hubkit.formats import rle

    feats = load_features(data_dir / "hubmap-kidney-aaa6a05cc" / "aaa6a05cc.json")
    shape = (18484, 13013)
    assert features_to_rle(feats, shape, strip_width=1500) == rle.encode(rasterize(feats, shape))


GEOJSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.sampled_from(
        ["Polygon", "MultiPolygon", "Feature", "FeatureCollection", "glomerulus"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "geometry", "coordinates", "properties", "features", "shapes", "points",
                         "shape_type", "label", "classification", "name"]), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(doc=GEOJSON)
def test_fuzzed_annotation_files_load_or_raise_annotation_errors(tmp_path_factory, doc):
    features = load_fuzzed(tmp_path_factory.mktemp("fuzz"), "a.json", doc, load_features, AnnotationError)
    for f in features or []:  # whatever loads, rasterises
        rasterize([f], (16, 16))
