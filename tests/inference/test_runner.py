import numpy as np
import pandas as pd
import pytest
import tifffile

from hubkit.formats import rle
from hubkit.inference import PredictConfig, predict_folder, predict_image
from hubkit.slides import write_slide
from tests.helpers import EXACT, csv_file, echo, smooth_image


def test_failed_slides_are_logged_and_written_empty(tmp_path):
    data = tmp_path / "comp"
    (data / "test").mkdir(parents=True)
    csv_file(data / "sample_submission.csv", ["id", "predicted"], [("good", ""), ("bad", ""), ("gone", "")])
    rgb = smooth_image((64, 64))
    write_slide(data / "test" / "good.tiff", rgb)
    (data / "test" / "bad.tiff").write_bytes(b"II*\x00garbage")
    logged = []
    cfg = PredictConfig(**EXACT)
    result = predict_folder(data, tmp_path / "submission.csv", echo(), cfg, log=logged.append)
    sub = pd.read_csv(tmp_path / "submission.csv", dtype=str, keep_default_na=False)
    assert sub["id"].tolist() == ["good", "bad", "gone"]  # sample order, every id
    assert sub["predicted"].tolist() == [rle.encode(predict_image(echo(), rgb, cfg)[0] > 0.5), "", ""]
    assert result.ok == ["good"] and result.failed == ["bad", "gone"]
    errors = {o.slide_id: o.error for o in result.outcomes}
    assert "bad.tiff" in errors["bad"] and "no such file" in errors["gone"]
    assert len(logged) == 2


@pytest.mark.parametrize("slide_id", ["../x", "/etc/passwd", "a/b", "..", ""])
def test_ids_that_are_paths_never_reach_the_file_system(tmp_path, slide_id):
    data = tmp_path / "comp"
    (data / "test").mkdir(parents=True)
    csv_file(data / "sample_submission.csv", ["id", "predicted"], [(slide_id, "")])
    with pytest.raises(Exception, match="not a plain file name"):
        predict_folder(data, tmp_path / "submission.csv", echo(), PredictConfig(**EXACT))
    assert not (tmp_path / "submission.csv").exists()


def _competition(tmp_path, slides: dict):
    data = tmp_path / "comp"
    (data / "test").mkdir(parents=True)
    csv_file(data / "sample_submission.csv", ["id", "predicted"], [(i, "") for i in slides])
    for slide_id, image in slides.items():
        if image is not None and image.ndim == 2:
            tifffile.imwrite(data / "test" / f"{slide_id}.tiff", image, photometric="minisblack", tile=(32, 32))
        elif image is not None:
            write_slide(data / "test" / f"{slide_id}.tiff", image)
    return data


@pytest.mark.parametrize("image, fails, line", [
    (smooth_image((64, 64))[..., 0], True, "single-band (greyscale) image"),  # every tile would be 'no tissue'
    (np.full((64, 64, 3), 240, np.uint8), False, "no tile passed the tissue test"),  # glass only
    (np.repeat(smooth_image((64, 64))[..., :1], 3, -1), False, "no tile passed the tissue test"),  # grey as RGB
    (smooth_image((64, 64)), False, None),
])
def test_slides_that_would_come_out_empty_are_not_silent(tmp_path, image, fails, line):
    data = _competition(tmp_path, {"s": image})
    logged = []
    result = predict_folder(data, tmp_path / "sub.csv", echo(), PredictConfig(device="cpu"), log=logged.append)
    assert result.failed == (["s"] if fails else [])
    if line:
        assert len(logged) == 1 and line in logged[0] and "s" in logged[0]
    else:
        assert not logged


def test_a_rerun_that_fails_keeps_the_earlier_good_submission(tmp_path):
    data = _competition(tmp_path, {"a": smooth_image((64, 64)), "b": smooth_image((64, 64), seed=1)})
    out = tmp_path / "sub.csv"
    predict_folder(data, out, echo(), PredictConfig(**EXACT))
    good = out.read_bytes()
    assert pd.read_csv(out, dtype=str, keep_default_na=False)["predicted"].str.len().min() > 0
    for name in ("a", "b"):  # the slides are gone or replaced: every slide of the rerun fails
        (data / "test" / f"{name}.tiff").write_bytes(b"II*\x00broken")
    result = predict_folder(data, out, echo(), PredictConfig(**EXACT), log=lambda _: None)
    assert result.failed == ["a", "b"]
    assert out.read_bytes() == good


@pytest.mark.parametrize("earlier", [
    "id,predicted\nother,1 2\n",  # another competition's ids
    "not a csv \x00\n",
    "id,wrong\na,\nb,\n",
])
def test_a_file_that_is_not_this_runs_submission_is_replaced_by_placeholders_at_once(tmp_path, earlier):
    data = _competition(tmp_path, {"a": None, "b": None})  # both slides missing: every slide fails
    out = tmp_path / "sub.csv"
    out.write_text(earlier)
    predict_folder(data, out, echo(), PredictConfig(**EXACT), log=lambda _: None)
    assert out.read_text() == "id,predicted\na,\nb,\n"


@pytest.mark.parametrize("devices", ["cpu,cpu", "cpu,cpu,cpu"])
def test_replicas_on_several_devices_write_the_one_device_submission(tmp_path, devices):
    from tests.helpers import SeededSource

    slides = {f"s{k}": smooth_image((96 + 32 * k, 128), seed=k) for k in range(4)}
    data = _competition(tmp_path, slides)
    ensemble = SeededSource().load()
    one, many = tmp_path / "one.csv", tmp_path / "many.csv"
    cfg = dict(device="cpu", min_tissue=0.0, amp=False, torch_threads=1)
    predict_folder(data, one, ensemble, PredictConfig(**cfg))
    seen = []
    result = predict_folder(data, many, ensemble, PredictConfig(**cfg, devices=devices),
                            after_slide=lambda o, left, e, c: (seen.append(o.slide_id), (e, c))[1])
    assert many.read_bytes() == one.read_bytes()
    assert [o.slide_id for o in result.outcomes] == list(slides)  # submission order, whatever finished first
    assert sorted(seen) == sorted(slides)


@pytest.mark.parametrize("devices, message", [("cpu,gpu", "unknown device 'gpu'"), ("cuda:0,cuda:1", "no CUDA GPU")])
def test_bad_device_lists_are_named(devices, message):
    with pytest.raises(Exception, match=message):
        PredictConfig(devices=devices).device_list()


@pytest.mark.parametrize("min_area, components", [(0, 2), (100, 1), (2000, 0)])
def test_specks_smaller_than_min_area_never_reach_the_submission(tmp_path, min_area, components):
    from skimage.measure import label

    rgb = np.zeros((128, 160, 3), np.uint8)
    rgb[..., 1:] = 200
    rgb[20:60, 30:70, 0] = 255  # a glomerulus of 1,600 px
    rgb[100:104, 120:124, 0] = 255  # a speck of 16
    data = _competition(tmp_path, {"s": rgb})
    predict_folder(data, tmp_path / "sub.csv", echo(), PredictConfig(**{**EXACT, "min_area": min_area}))
    sub = pd.read_csv(tmp_path / "sub.csv", dtype=str, keep_default_na=False)
    assert label(rle.decode(sub["predicted"][0], (128, 160)), connectivity=2).max() == components
