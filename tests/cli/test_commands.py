import json

import pandas as pd
import pytest

from hubkit.cli import main
from hubkit.formats import rle
from hubkit.models import create_model
from hubkit.slides import open_slide


def test_info_prints_versions_device_and_zoo(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "hubkit" in out and "rasterio" in out and "device:" in out and "1 model card(s)" in out


def test_demo_runs_the_main_job_on_the_real_tissue_hubkit_ships(tmp_path, capsys, monkeypatch):
    from hubkit.testbed import data

    monkeypatch.setattr(data, "find_data_dir", lambda: None)  # a fresh machine: no shared data beside it
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--tta", "none"]) == 0
    out = capsys.readouterr().out
    assert "REAL tissue" in out and "ship with hubkit" in out and "SYNTHETIC" not in out
    dice = float(out.strip().splitlines()[-1].split()[2])
    assert dice > 0.85, out  # the starter model on tissue it never trained on (0.91 when measured)
    sub = pd.read_csv(tmp_path / "submission.csv", dtype=str, keep_default_na=False)
    solution = pd.read_csv(tmp_path / "competition" / "solution.csv", dtype=str, keep_default_na=False)
    assert sub["id"].tolist() == solution["id"].tolist() == ["local-0", "local-1"]
    summary = pd.read_csv(tmp_path / "analysis" / "summary.csv")
    assert summary["id"].tolist() == ["local-0", "local-1", "overall"]
    assert (summary["tp"] > 0).all() and summary["glomeruli"].iloc[-1] == summary["glomeruli"].iloc[:2].sum()
    for slide_id, encoding in zip(solution["id"], solution["encoding"]):
        assert (tmp_path / f"overlay-{slide_id}.png").stat().st_size > 1000
        report = tmp_path / "analysis" / slide_id
        assert "<img" in (report / "report.html").read_text()
        assert json.loads((report / "glomeruli.geojson").read_text())["features"]
        slide = open_slide(tmp_path / "competition" / "test" / f"{slide_id}.tiff")
        assert 0 < rle.decode(encoding, slide.shape).mean() < 0.2


def test_make_competition_small_uses_the_shipped_tiles_and_full_needs_the_shared_data(tmp_path, capsys, monkeypatch):
    from hubkit.testbed import data

    monkeypatch.setattr(data, "find_data_dir", lambda: None)
    assert main(["make-competition", str(tmp_path / "small"), "--small"]) == 0
    out = capsys.readouterr().out
    assert "train_080.jpg..train_092.jpg" in out and "train_093.jpg..train_094.jpg" in out
    assert main(["make-competition", str(tmp_path / "full")]) == 2
    assert "need 32 real tiles" in capsys.readouterr().err and not (tmp_path / "full").exists()


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    assert main(["make-competition", str(tmp_path), "--small", "--tiles", str(tmp_path / "none")]) == 2
    assert "0 tile pairs" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nothing"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "neither sample_submission.csv nor test" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--zoo", str(tmp_path / "empty"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "no model card (card.json or *.card.json) found" in capsys.readouterr().err


def test_zoo_lists_cards_and_bad_cards_exit_2(tmp_path, capsys):
    from hubkit.models import zoo
    from hubkit.models.card import ModelCard

    zoo.save(create_model("Unet", "resnet18"), ModelCard("Unet", "resnet18", name="tiny", cv_score=0.5), tmp_path / "a")
    assert main(["zoo", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 model card(s)" in out and "tiny" in out and "Unet/resnet18" in out and "0.5000" in out
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "card.json").write_text("{}")
    assert main(["zoo", str(tmp_path)]) == 2
    assert "not a hubkit model card" in capsys.readouterr().err


def test_interrupt_is_one_line_and_exit_130(monkeypatch, capsys):
    from hubkit.cli import commands

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(commands.COMMANDS, "info", interrupted)
    assert main(["info"]) == 130
    assert capsys.readouterr().err.strip() == "hubkit: interrupted"


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only hubkit errors become one-line messages: anything else is a bug and propagates."""
    from hubkit.cli import commands

    def buggy(args):
        return {}["missing"]

    monkeypatch.setitem(commands.COMMANDS, "info", buggy)
    with pytest.raises(KeyError):
        main(["info"])
