import csv
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hubkit.annotations import load_features, rasterize
from hubkit.formats import rle
from hubkit.formats.metrics import mask_dice as dice


def kaggle_encode(mask):
    """The reference encoder from the competition's kernels."""
    pixels = np.concatenate([[0], mask.T.flatten(), [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


WORKED = [
    ([[0, 0], [0, 0]], ""),
    ([[1, 1], [1, 1]], "1 4"),
    ([[1, 0], [0, 0]], "1 1"),
    ([[0, 1], [0, 0]], "3 1"),  # (0, 1) is the third pixel top-to-bottom, then left-to-right
    ([[0, 0], [1, 0]], "2 1"),
    ([[0, 1], [1, 0]], "2 2"),  # bottom of column 0 joins top of column 1 into one run
    ([[1, 0, 1], [1, 0, 1], [0, 0, 1]], "1 2 7 3"),
    ([[5]], "1 1"),  # any non-zero value is foreground
]


masks = st.tuples(st.integers(1, 24), st.integers(1, 24), st.floats(0, 1)).flatmap(
    lambda t: arrays(np.uint8, (t[0], t[1]), elements=st.sampled_from([0, 1]))
)


@pytest.fixture(scope="module")
def aaa6(data_dir):
    folder = data_dir / "hubmap-kidney-aaa6a05cc"
    csv.field_size_limit(sys.maxsize)
    with open(folder / "train_aaa6a05cc.csv") as f:
        row = next(csv.DictReader(f))
    shape = (18484, 13013)  # height, width from HuBMAP-20-dataset_information.csv
    polygons = rasterize(load_features(folder / "aaa6a05cc.json"), shape)
    return row["encoding"], shape, polygons


@pytest.mark.parametrize("rows, expected", WORKED)
def test_worked_examples(rows, expected):
    mask = np.array(rows, dtype=np.uint8)
    assert rle.encode(mask) == expected
    assert np.array_equal(rle.decode(expected, mask.shape), (mask != 0).astype(np.uint8))


@pytest.mark.parametrize(
    "encoding, shape, message",
    [
        ("1 2 3", (4, 4), "odd number"),
        ("1 2.5", (4, 4), "not an integer"),
        ("a 2", (4, 4), "not an integer"),
        ("0 2", (4, 4), "1-indexed"),
        ("3 0", (4, 4), "length 0"),
        ("5 2 1 2", (4, 4), "unsorted or overlaps"),
        ("1 3 3 2", (4, 4), "unsorted or overlaps"),
        ("15 3", (4, 4), "past the end|reach pixel 17"),
        ("1 2", (0, 4), "shape must be positive"),
        # numbers as Kaggle's scorer reads them, not as Python's int() does
        ("1_0 2", (4, 4), "'1_0' at character 1 is not an integer"),
        ("\u0661 2", (4, 4), "is not an integer"),  # an Arabic-Indic digit
        ("1 \uff12", (4, 4), "is not an integer"),  # a full-width digit
        ("+1 2", (4, 4), "'\\+1' at character 0 is not an integer"),
        ("-1 2", (4, 4), "'-1' at character 0 is not an integer"),
        ("1 2\u00a03 4", (4, 4), "is not an integer"),  # a no-break space
        ("1 2\x00", (4, 4), "is not an integer"),
        ("9223372036854775807 9223372036854775807", (4, 4), "has more than 18 digits"),  # int64 max: ends overflow
        ("1 99999999999999999999999", (4, 4), "at position 1 has more than 18 digits"),
        ("1 1000000000000000000", (4, 4), "has more than 18 digits"),
        ("1 2", (4.7, 4), "whole pixels"),
        ("1 2", ("4", 4), "whole pixels"),
        ("1 2", (4,), "shape must be"),
    ],
)
def test_malformed_encodings_are_rejected_with_the_reason(encoding, shape, message):
    with pytest.raises(rle.RLEError, match=message):
        rle.decode(encoding, shape, name="img1")


def test_error_names_the_image():
    with pytest.raises(rle.RLEError, match="'abc123'"):
        rle.decode("1 2 3", (4, 4), name="abc123")


@pytest.mark.parametrize("empty", ["", "   ", None, float("nan")])
def test_empty_encoding_is_the_empty_mask(empty):
    assert rle.decode(empty, (3, 5)).sum() == 0
    assert rle.decode_window(empty, (3, 5), (0, 0, 2, 2)).sum() == 0


def test_touching_runs_are_accepted():
    assert rle.decode("1 2 3 2", (2, 2)).sum() == 4


@settings(max_examples=200, deadline=None)
@given(mask=masks, fortran=st.booleans())
def test_round_trip_and_reference_agreement(mask, fortran):
    if fortran:
        mask = np.asfortranarray(mask)
    encoding = rle.encode(mask)
    assert encoding == kaggle_encode(mask)
    assert np.array_equal(rle.decode(encoding, mask.shape), mask)


@settings(max_examples=200, deadline=None)
@given(mask=masks, data=st.data())
def test_strip_encoder_equals_whole_encoder(mask, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, mask.shape[1]), max_size=5)))
    enc, runs = rle.StripEncoder(mask.shape[0], mask.shape[1]), rle.StripEncoder(mask.shape[0], mask.shape[1])
    edges = [0, *cuts, mask.shape[1]]
    for a, b in zip(edges[:-1], edges[1:]):
        strip = mask[:, a:b]
        strip = np.asfortranarray(strip) if data.draw(st.booleans()) else strip.astype(bool)
        enc.add(strip)
        runs.add(strip)
    assert enc.finish() == rle.encode(mask)
    starts, ends = runs.finish_runs()  # the runs before formatting: what parse reads back
    expected = rle.parse(rle.encode(mask), mask.shape)
    assert starts.dtype == ends.dtype == np.int64
    assert np.array_equal(starts, expected[0]) and np.array_equal(ends, expected[1])


@pytest.mark.parametrize("loop_segments", [0, 10**9], ids=["running-sum", "segment-loop"])
@settings(max_examples=150, deadline=None)
@given(mask=masks, data=st.data())
def test_window_decode_equals_slicing_the_whole_mask(mask, data, loop_segments):
    h, w = mask.shape
    row, col = data.draw(st.integers(-5, h + 2)), data.draw(st.integers(-5, w + 2))
    height, width = data.draw(st.integers(1, h + 6)), data.draw(st.integers(1, w + 6))
    padded = np.zeros((3 * h + 32, 3 * w + 32), np.uint8)
    padded[8 : 8 + h, 8 : 8 + w] = mask
    expected = padded[8 + row : 8 + row + height, 8 + col : 8 + col + width]
    encoding = rle.encode(mask)
    saved, rle._LOOP_SEGMENTS = rle._LOOP_SEGMENTS, loop_segments  # both ways of writing the runs
    try:
        for source in (encoding, rle.parse(encoding, mask.shape)):
            assert np.array_equal(rle.decode_window(source, mask.shape, (row, col, height, width)), expected)
    finally:
        rle._LOOP_SEGMENTS = saved


@pytest.mark.parametrize(
    "strips, message",
    [
        ([np.zeros((3, 2))], "threshold probabilities first"),
        ([np.zeros((4, 2), np.uint8)], r"\(3, width\)"),
        ([np.zeros((3, 3), np.uint8), np.zeros((3, 2), np.uint8)], "past the image width"),
    ],
)
def test_strip_encoder_rejects_bad_strips(strips, message):
    enc = rle.StripEncoder(3, 4)
    with pytest.raises(rle.RLEError, match=message):
        for s in strips:
            enc.add(s)


def test_strip_encoder_checks_all_columns_arrived():
    enc = rle.StripEncoder(3, 4)
    enc.add(np.ones((3, 2), np.uint8))
    with pytest.raises(rle.RLEError, match="2 of 4 columns"):
        enc.finish()


def test_real_rle_matches_the_real_polygons(aaa6):
    encoding, shape, polygons = aaa6
    mask = rle.decode(encoding, shape, name="aaa6a05cc")
    assert mask.sum() == 4_316_376  # area stated in the data's SOURCE.md
    assert dice(mask, polygons) > 0.99
    # the competition's RLE sits one row above its polygons: shifted down it still agrees
    assert dice(mask[:-1], polygons[1:]) > 0.99
    # and row-major decoding (the classic mistake) does not
    assert dice(mask.reshape(-1, order="F").reshape(shape), polygons) < 0.1


def test_real_rle_reencodes_to_the_identical_string(aaa6):
    encoding, shape, _ = aaa6
    assert rle.encode(rle.decode(encoding, shape)) == encoding


def test_real_rle_window_decode(aaa6):
    encoding, shape, _ = aaa6
    whole = rle.decode(encoding, shape)
    window = (10_000, 5_150, 500, 450)  # the crop documented in the data's SOURCE.md
    part = rle.decode_window(encoding, shape, window)
    assert np.array_equal(part, whole[10_000:10_500, 5_150:5_600])
    assert abs(part.mean() - 0.1640) < 0.001  # glomerulus fraction stated for this crop


def test_the_largest_accepted_numbers_cannot_overflow():
    starts, ends = rle.parse("999999999999999999 999999999999999999")
    assert ends[0] == 2 * 999999999999999999 - 1  # start + length - 1, exact in int64
    with pytest.raises(rle.RLEError, match="reach pixel"):
        rle.parse("999999999999999999 999999999999999999", (50_000, 40_000))


@pytest.mark.parametrize("raw, expected", [
    ([1, 2, 2, 1], "1 4"),  # numpy takes any non-zero byte of a bool array as True
    ([0, 2, 0, 1], "2 1 4 1"),
    ([255, 255, 0, 0], "1 2"),
])
def test_bool_views_of_other_bytes_encode_as_their_truth(raw, expected):
    strip = np.array(raw, np.uint8).reshape(4, 1).view(np.bool_)
    assert rle.encode(strip) == expected == rle.encode(np.array(raw).reshape(4, 1) != 0)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("0123456789 \t\n-+_.e\u0661\u00a0x"), max_size=40),
       shape=st.tuples(st.integers(1, 30), st.integers(1, 30)))
def test_fuzzed_encodings_decode_exactly_or_raise_rle_errors(text, shape):
    try:
        mask = rle.decode(text, shape)
    except rle.RLEError:
        return
    assert mask.shape == shape and set(np.unique(mask)) <= {0, 1}
    numbers = [int(v) for v in text.split()]  # '01' is 1, as Kaggle's scorer reads it
    assert [int(v) for v in rle.encode(mask).split()] == numbers or _has_touching_runs(text)


def _has_touching_runs(text: str) -> bool:
    """Touching runs ('1 2 3 2') decode fine but re-encode as one run."""
    values = [int(v) for v in text.split()]
    return any(values[i] + values[i + 1] == values[i + 2] for i in range(0, len(values) - 2, 2))
