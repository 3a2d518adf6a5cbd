import numpy as np
import pytest
from scipy.ndimage import binary_dilation
from skimage.measure import label

from hubkit.errors import ConfigError, RLEError
from hubkit.formats import rle
from hubkit.formats.hubmap2021 import HuBMAP2021
from hubkit.formats.hubmap2023 import HuBMAP2023
from hubkit.formats.specks import drop_components, remove_specks


def drop_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    """What removing specks means, on the whole mask at once."""
    labels = label(mask, connectivity=2)
    areas = np.bincount(labels.ravel())
    areas[0] = 0
    return mask & (areas[labels] >= min_area)


def blobs(shape, spots):
    mask = np.zeros(shape, bool)
    for r, c, h, w in spots:
        mask[r : r + h, c : c + w] = True
    return mask


@pytest.mark.parametrize(
    "shape, spots, min_area, kept",
    [
        # (row, col, height, width) boxes; which of them survive
        ((40, 60), [(0, 0, 2, 2), (10, 10, 8, 8)], 10, [1]),  # a speck in the slide's corner goes
        ((40, 60), [(39, 58, 1, 2)], 3, []),  # one in the last pixels too
        ((40, 60), [(20, 14, 3, 3)], 9, [0]),  # exactly min_area stays
        ((40, 60), [(20, 14, 3, 3)], 10, []),
        ((40, 60), [(15, 14, 3, 4)], 13, []),
        ((40, 60), [(5, 0, 2, 60)], 120, [0]),  # a thin component across the slide is measured whole
        ((40, 60), [(5, 0, 2, 60)], 121, []),
        ((40, 60), [(0, 0, 40, 60)], 2400, [0]),  # the whole slide: one run over every column
        ((40, 60), [(0, 0, 40, 60)], 2401, []),
        ((40, 60), [(38, 3, 2, 1), (0, 4, 2, 1)], 2, [0, 1]),  # one run down a column's foot and the next one's
        ((40, 60), [(38, 3, 2, 1), (0, 4, 2, 1)], 3, []),  # head: two pieces of 2 px, not touching
        ((40, 60), [(10, 10, 1, 1), (11, 11, 1, 1), (12, 12, 1, 1)], 3, [0, 1, 2]),  # a diagonal chain
        ((40, 60), [(10, 10, 1, 1), (12, 11, 1, 1)], 2, []),  # a row apart: not touching
        ((40, 60), [(2, 2, 3, 3), (4, 5, 1, 1)], 10, [0, 1]),  # diagonal neighbours are one component of 10
        ((40, 60), [(2, 2, 3, 3), (6, 6, 1, 1)], 5, [0]),
    ],
)
def test_specks_go_and_glomeruli_stay(shape, spots, min_area, kept):
    mask = blobs(shape, spots)
    out = rle.decode(remove_specks(rle.encode(mask), shape, min_area), shape)
    assert (out == blobs(shape, [spots[k] for k in kept])).all()


@pytest.mark.parametrize("seed", range(6))
def test_working_on_runs_equals_labelling_the_whole_mask(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(60, 260, 2))
    mask = binary_dilation(rng.random(shape) < 0.05, iterations=int(rng.integers(0, 3)))
    min_area = int(rng.integers(2, 40))
    out = remove_specks(rle.encode(mask), shape, min_area)
    assert out == rle.encode(drop_small(mask, min_area))
    runs = drop_components(*rle.parse(rle.encode(mask), shape), shape, min_area)  # the sink's path: runs in and out
    assert rle.format_runs(*runs) == out


@pytest.mark.parametrize("encoding", ["", "5 3 20 2"])
def test_nothing_to_remove_returns_the_encoding_itself(encoding):
    assert remove_specks(encoding, (10, 10), 0) is encoding
    assert remove_specks(encoding, (10, 10), 1) == encoding
    starts, ends = rle.parse(encoding, (10, 10))
    assert drop_components(starts, ends, (10, 10), 1)[0] is starts


@pytest.mark.parametrize(
    "min_area, seeds, expected",
    [
        (4, None, ""),  # every component under the area: no runs left
        (2, None, "5 3"),
        (0, "6 1", "5 3"),  # a seed in the first component only
        (0, "6 1 21 1", "5 3 21 1"),  # in the first and the third: the run that crossed a column is cut
        (0, "20 1", "20 1"),
        (3, "20 2", ""),  # the seeded ones are specks, the big one unseeded
    ],
)
def test_dropping_components_on_runs(min_area, seeds, expected):
    shape = (10, 10)  # 3 components: "5 3" rows 4-6 of column 0; "20 2" row 9 of column 1 and row 0 of column 2
    seed_starts = None if seeds is None else rle.parse(seeds, shape)[0]
    runs = drop_components(*rle.parse("5 3 20 2", shape), shape, min_area, seed_starts=seed_starts)
    assert rle.format_runs(*runs) == expected
    assert remove_specks("5 3 20 2", shape, min_area, seeds=seeds) == expected


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: remove_specks("1 5", (10, 10), -1), ConfigError, "min_area"),
        (lambda: remove_specks("1 500", (10, 10), 4, name="aaa6a05cc"), RLEError, "aaa6a05cc"),
        (lambda: HuBMAP2021(min_area=-5), ConfigError, "min_area"),
        (lambda: HuBMAP2021(min_area=True), ConfigError, "min_area"),
        (lambda: HuBMAP2021(min_area=2.5), ConfigError, "min_area"),
        (lambda: HuBMAP2023(min_area=-1), ConfigError, "min_area"),  # the 2023 format takes the same check
        (lambda: HuBMAP2021().sink((8, 8), ["glomerulus"], 0.5, -1), ConfigError, "min_area"),  # a run's, up front
        (lambda: HuBMAP2023().sink((8, 8), ["blood_vessel"], 0.5, 0.5), ConfigError, "min_area"),
        (lambda: HuBMAP2021().sink((8, 8), ["glomerulus"], 0.5, None, 0.4), ConfigError,  # resolved threshold
         r"seed_threshold must be in \[threshold, 1\) = \[0.5, 1\), got 0.4"),
        (lambda: HuBMAP2023().sink((8, 8), ["blood_vessel"], 0.5, None, 1.0), ConfigError, "seed_threshold"),
    ],
)
def test_bad_settings_and_encodings_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("fmt_min_area, sink_min_area, kept", [(0, None, 2), (10, None, 1), (10, 0, 2), (0, 10, 1)])
def test_the_2021_sink_drops_specks_by_the_format_or_the_run(fmt_min_area, sink_min_area, kept):
    shape = (30, 40)
    probability = blobs(shape, [(2, 2, 2, 2), (10, 10, 6, 6)]).astype(np.float32)[None]
    sink = HuBMAP2021(min_area=fmt_min_area).sink(shape, ["glomerulus"], 0.5, sink_min_area)
    sink.aggregate(probability[..., :25], 0)
    sink.aggregate(probability[..., 25:], 25)
    out = rle.decode(sink.finalize()["predicted"], shape)
    assert label(out, connectivity=2).max() == kept


@pytest.mark.parametrize(
    "fmt, seed_threshold, kept",
    [
        # a faint blob (peak 0.6) and a sure one (peak 0.9), both drawn at 0.3
        (HuBMAP2021(min_area=0), None, [0, 1]),
        (HuBMAP2021(min_area=0), 0.5, [0, 1]),
        (HuBMAP2021(min_area=0), 0.7, [1]),
        (HuBMAP2021(min_area=0), 0.95, []),
        (HuBMAP2023(min_area=0), None, [0, 1]),
        (HuBMAP2023(min_area=0), 0.7, [1]),
    ],
    ids=["2021-off", "2021-both-seeded", "2021-sure-only", "2021-none", "2023-off", "2023-sure-only"],
)
def test_a_seed_threshold_keeps_the_sure_masks_at_their_low_outline(fmt, seed_threshold, kept):
    shape = (30, 40)
    spots = [(2, 2, 6, 6), (12, 20, 8, 8)]
    probability = np.zeros(shape, np.float32)
    for (r, c, h, w), peak in zip(spots, (0.6, 0.9)):
        probability[r : r + h, c : c + w] = 0.4  # the outline, above the 0.3 cut
        probability[r + 2 : r + h - 2, c + 2 : c + w - 2] = peak
    class_name = "glomerulus" if fmt.name == "hubmap2021" else "blood_vessel"
    sink = fmt.sink(shape, [class_name], 0.3, None, seed_threshold)
    sink.aggregate(probability[None, :, :25], 0)
    sink.aggregate(probability[None, :, 25:], 25)
    row = sink.finalize()
    if fmt.name == "hubmap2021":
        out = rle.decode(row["predicted"], shape) > 0
    else:
        from hubkit.formats.hubmap2023 import parse_instances

        instances = parse_instances(row["prediction_string"], shape, "tile")
        out = np.any([i.mask for i in instances], axis=0) if instances else np.zeros(shape, bool)
    assert (out == blobs(shape, [spots[k] for k in kept])).all()


def test_a_real_slide_keeps_every_glomerulus_and_loses_every_speck(data_dir):
    """aaa6a05cc's full-slide RLE (18,484 x 13,013 px, 96 glomeruli) with 300 specks of 64 px
    sprinkled on glass: removing specks under 8,000 px gives the slide's own encoding back."""
    import pandas as pd

    folder = data_dir / "hubmap-kidney-aaa6a05cc"
    truth = pd.read_csv(folder / "train_aaa6a05cc.csv")["encoding"][0]
    shape = (18484, 13013)
    assert remove_specks(truth, shape, 8000) is truth
    mask = rle.decode(truth, shape)
    rng = np.random.default_rng(0)
    placed = 0
    while placed < 300:
        r, c = rng.integers(2, shape[0] - 10), rng.integers(2, shape[1] - 10)
        if not mask[r - 2 : r + 10, c - 2 : c + 10].any():
            mask[r : r + 8, c : c + 8] = 1
            placed += 1
    assert remove_specks(rle.encode(mask), shape, 8000, name="aaa6a05cc") == truth


@pytest.mark.parametrize(  # components kept of those at the low cut: 13 of 60, 16 of 42, 1 of 6, 25 of 25, 15 of 72
    "seed, low, high, min_area", [(0, 0.6, 0.75, 0), (1, 0.55, 0.7, 30), (2, 0.5, 0.9, 5), (3, 0.6, 0.6, 10),
                                  (4, 0.65, 0.8, 0)])
def test_seeds_keep_only_components_above_the_high_cut(seed, low, high, min_area):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(60, 200, 2))
    prob = gaussian_filter(rng.random(shape), 3)
    prob = (prob - prob.min()) / (prob.max() - prob.min())
    out = remove_specks(rle.encode(prob > low), shape, min_area, seeds=rle.encode(prob > high))
    labels = label(prob > low, connectivity=2)  # 8-connected, as specks (skimage's hysteresis is 4-connected)
    expected = np.isin(labels, labels[prob > high]) & (labels > 0)
    assert out == rle.encode(drop_small(expected, min_area))
    runs = drop_components(*rle.parse(rle.encode(prob > low), shape), shape, min_area,
                           seed_starts=rle.parse(rle.encode(prob > high), shape)[0])
    assert rle.format_runs(*runs) == out


def test_seeds_outside_the_mask_are_refused():
    with pytest.raises(RLEError, match="aaa6a05cc: seed pixels outside the mask"):
        remove_specks("1 5", (10, 10), 0, seeds="20 2", name="aaa6a05cc")
