import pandas as pd
import pytest

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
