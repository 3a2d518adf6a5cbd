import csv
import sys

import numpy as np

from hubkit import rle
from hubkit.cli import main
from hubkit.slide import open_slide


def test_info_prints_versions_and_device(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "hubkit" in out and "rasterio" in out and "device:" in out


def test_demo_writes_a_readable_hubmap_folder(tmp_path, capsys):
    assert main(["demo", "--synthetic", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "equal the mask: True" in out
    csv.field_size_limit(sys.maxsize)
    rows = list(csv.DictReader(open(tmp_path / "train.csv")))
    assert [r["id"] for r in rows] == ["sample-bands", "sample-pages"]
    for row in rows:
        slide = open_slide(tmp_path / "train" / f"{row['id']}.tiff")
        mask = rle.decode(row["encoding"], slide.shape)
        assert 0 < mask.mean() < 0.2
        # glomeruli are drawn darker than the tissue around them
        pixels = slide.read((0, 0, *slide.shape)).astype(float).mean(axis=2)
        assert pixels[mask == 1].mean() < pixels[mask == 0].mean()


def test_demo_falls_back_to_the_labelled_synthetic_slide(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--tiles", str(tmp_path / "missing")]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out


def test_zoo_lists_cards_and_bad_cards_exit_2(tmp_path, capsys):
    from hubkit import zoo
    from hubkit.card import ModelCard

    zoo.save(zoo.create_model("Unet", "resnet18"), ModelCard("Unet", "resnet18", name="tiny", cv_score=0.5), tmp_path / "a")
    assert main(["zoo", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 model card(s)" in out and "tiny" in out and "Unet/resnet18" in out and "0.5000" in out
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "card.json").write_text("{}")
    assert main(["zoo", str(tmp_path)]) == 2
    assert "not a hubkit model card" in capsys.readouterr().err
