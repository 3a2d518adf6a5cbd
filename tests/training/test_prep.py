
import cv2
import numpy as np
import pandas as pd
import pytest

from hubkit.errors import DataError
from hubkit.training.prep import (
    INDEX_COLUMNS,
    folds_by_group,
    read_index,
    split_fold,
)


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


SPLIT_INDEX = pd.DataFrame({
    "group": [f"g{i // 3}" for i in range(24)],  # 8 groups of 3 rows
    "source": ["vanderbilt"] * 18 + ["aidpath"] * 6,
})


@pytest.mark.parametrize("sources_train, sources_valid", [
    (None, None),
    (None, ["vanderbilt"]),  # the starter's split: every source trains, one scores
    (["aidpath"], ["vanderbilt"]),  # a cross-source run
    (["vanderbilt", "aidpath"], ["aidpath"]),
])
@pytest.mark.parametrize("fold", [0, 1, 3])
def test_split_fold_holds_out_exactly_its_folds_groups(fold, sources_train, sources_valid):
    """The rows a fold trains on and the rows it is scored on never share a group, the held-out rows
    are exactly the fold's (of the asked sources), and the rest of the fold's sources all train."""
    folds = folds_by_group(SPLIT_INDEX["group"], 4, seed=0)
    train, held_out = split_fold(SPLIT_INDEX, 4, 0, fold, sources_train, sources_valid)
    assert not set(train["group"]) & set(held_out["group"])
    in_fold = SPLIT_INDEX[folds == fold]
    expected_valid = in_fold[in_fold["source"].isin(sources_valid or SPLIT_INDEX["source"].unique())]
    out_fold = SPLIT_INDEX[folds != fold]
    expected_train = out_fold[out_fold["source"].isin(sources_train or SPLIT_INDEX["source"].unique())]
    assert list(held_out.index) == list(expected_valid.index)
    assert list(train.index) == list(expected_train.index)


def test_tile_prep_writes_an_index_with_groups(tiny_tiles):
    index, _ = read_index(tiny_tiles)
    assert len(index) == 8 and index["group"].nunique() == 2
    assert (index["height"] == 300).all() and (index["width"] == 400).all()
    assert (index["glomerulus_fraction"] > 0).all()


def test_tiles_from_competition_slides_with_rle_or_polygons(tmp_path, data_dir):
    from hubkit.annotations import mask_to_features, save_geojson
    from hubkit.formats import rle as rle_mod
    from hubkit.slides import find_tile_pairs, read_mask, write_slide
    from hubkit.testbed.mosaic import mosaic_slide
    from hubkit.training.prep import prepare_slides

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


def _tile_set(root, rows):
    """A tile set of small PNG tiles: ``rows`` of (image name, image (h, w), mask name, mask (h, w))."""
    (root / "t").mkdir(parents=True, exist_ok=True)
    lines = []
    for image, ishape, mask, mshape in rows:
        if ishape:
            cv2.imwrite(str(root / "t" / image), np.full((*ishape, 3), 128, np.uint8))
        if mshape:
            cv2.imwrite(str(root / "t" / mask), np.zeros(mshape, np.uint8))
        lines.append({"image": f"t/{image}", "mask": f"t/{mask}", "source": "s", "group": "g", "scale": 1,
                      "height": 32, "width": 32, "glomerulus_fraction": 0})
    pd.DataFrame(lines, columns=INDEX_COLUMNS).to_csv(root / "index.csv", index=False)
    return root


@pytest.mark.parametrize("rows, message", [
    ([("a.png", (32, 32), "a_m.png", (32, 32))], None),
    ([("a.png", (32, 32), "a_m.png", (32, 40))], r"line 2: mask t/a_m.png is 32 x 40 px but its image t/a.png is 32 x 32"),
    ([("a.png", (32, 32), "a_m.png", (32, 32)), ("b.png", None, "b_m.png", (32, 32))], "line 3: tile t/b.png not found"),
    ([("a.png", (32, 32), "../../etc/passwd", None)], "points outside the tile set"),
    ([("a.png", (32, 32), "a_m.png", None)], "tile t/a_m.png not found"),
    ([], "lists no tiles"),
])
def test_a_broken_tile_set_fails_before_training_naming_the_file(tmp_path, rows, message):
    root = _tile_set(tmp_path, rows)
    if message is None:
        index, _ = read_index(root)
        assert len(index) == len(rows)
        return
    with pytest.raises(DataError, match=message) as info:
        read_index(root)
    assert "index.csv" in str(info.value)


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable tile index"),
    (b"image,mask\na.png,a_m.png\n", "missing columns"),
    (b"\xff\xfe\x00\x01", "not a readable tile index|missing columns"),
])
def test_an_unreadable_index_is_named(tmp_path, content, message):
    (tmp_path / "index.csv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_index(tmp_path)


def test_a_tile_that_is_not_an_image_is_named(tmp_path):
    root = _tile_set(tmp_path, [("a.png", (32, 32), "a_m.png", (32, 32))])
    (root / "t" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="tile t/a.png is not a readable image"):
        read_index(root)


@pytest.mark.slow
def test_cutting_slides_on_dask_gives_the_local_tile_set(tmp_path):
    pytest.importorskip("distributed", reason="needs the dask extra")
    from hubkit.formats import rle as rle_mod
    from hubkit.slides import write_slide
    from hubkit.training.prep import prepare_slides
    from tests.helpers import blobs, smooth_image

    comp = tmp_path / "comp"
    (comp / "train").mkdir(parents=True)
    encodings = {}
    for k, slide_id in enumerate(["a", "b", "c"]):
        shape = (640 + 128 * k, 768)
        write_slide(comp / "train" / f"{slide_id}.tiff", smooth_image(shape, seed=k), tile=128)
        encodings[slide_id] = rle_mod.encode(blobs(shape, [(200, 300 + 50 * k)], 60))
    pd.DataFrame({"id": list(encodings), "encoding": list(encodings.values())}).to_csv(comp / "train.csv", index=False)
    local = prepare_slides(comp, tmp_path / "local", scale=2.0, tile=128, random_share=0.5)
    spread = prepare_slides(comp, tmp_path / "dask", scale=2.0, tile=128, random_share=0.5, engine="dask", workers=2)
    assert spread == local and {r["group"] for r in local} == {"a", "b", "c"}
    for r in local:
        assert (tmp_path / "dask" / r["mask"]).read_bytes() == (tmp_path / "local" / r["mask"]).read_bytes()
