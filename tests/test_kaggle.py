import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from hubkit.cli import main
from hubkit.kaggle import KaggleInputs, _fit_budget, find_inputs
from hubkit.predict import PredictConfig
from hubkit.zoo import default_zoo_dir

KERNELS = Path(__file__).resolve().parents[1] / "kernels"
REQUIRED = {"id", "title", "code_file", "language", "kernel_type", "is_private", "enable_gpu", "enable_internet",
            "dataset_sources", "competition_sources", "kernel_sources"}


@pytest.mark.parametrize("kernel, internet", [("hubmap-submit", False), ("hubmap-train", False), ("hubkit-wheels", True)])
def test_kernel_metadata_is_complete(kernel, internet):
    meta = json.loads((KERNELS / kernel / "kernel-metadata.json").read_text())
    assert REQUIRED <= set(meta)
    assert meta["enable_internet"] is internet  # the Kaggle CLI defaults it to true: say it
    assert "/" in meta["id"] and meta["language"] == "python" and meta["kernel_type"] == "notebook"
    if meta["enable_gpu"]:
        assert meta["machine_shape"] == "NvidiaTeslaT4"  # P100 no longer runs current images
    book = json.loads((KERNELS / kernel / meta["code_file"]).read_text())
    assert book["nbformat"] == 4 and any(c["cell_type"] == "code" for c in book["cells"])
    if kernel == "hubmap-submit":
        assert meta["competition_sources"] == ["hubmap-kidney-segmentation"]


def _code(kernel: str) -> str:
    meta = json.loads((KERNELS / kernel / "kernel-metadata.json").read_text())
    book = json.loads((KERNELS / kernel / meta["code_file"]).read_text())
    return "\n".join("".join(c["source"]) for c in book["cells"] if c["cell_type"] == "code")


def test_find_inputs_walks_any_mount_layout(tmp_path):
    comp = tmp_path / "competitions" / "hubmap-kidney-segmentation"
    (comp / "test").mkdir(parents=True)
    (comp / "sample_submission.csv").write_text("id,predicted\n")
    wheels = tmp_path / "datasets" / "me" / "hubkit-wheels" / "versions" / "3"
    wheels.mkdir(parents=True)
    (wheels / "hubkit-0.1.0-py3-none-any.whl").write_bytes(b"")
    for name in ("a", "b"):
        (tmp_path / "models" / "me" / "zoo" / name).mkdir(parents=True)
        (tmp_path / "models" / "me" / "zoo" / name / "card.json").write_text("{}")
    found = find_inputs(tmp_path)
    assert found == KaggleInputs(comp, wheels, tmp_path / "models" / "me" / "zoo")


@pytest.mark.parametrize(
    "first, left, budget, expected",
    [
        (100, 4, 10_000, ("flip", 4)),  # fits: unchanged
        (100, 4, 300, ("none", 4)),  # 4 slides x 50 s without TTA (x1.15) fits in 300 s
        (100, 4, 130, ("none", 2)),
        (100, 4, 1, ("none", 1)),  # never below one model without TTA
    ],
)
def test_time_budget_drops_tta_then_models(first, left, budget, expected):
    cfg, models = _fit_budget(PredictConfig(tta="flip"), ["m"] * 4, first, left, budget, log=lambda m: None)
    assert (cfg.tta, len(models)) == expected


def test_submission_notebook_reproduces_hubkit_predict(tmp_path, data_dir, capsys):
    from hubkit.competition import SlideSpec, make_competition

    root = tmp_path / "input"
    comp = root / "hubmap-kidney-segmentation"
    make_competition(comp, data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200", (SlideSpec(2, 2, "pages"),),
                     first_tile="train_080")
    shutil.copytree(default_zoo_dir(), root / "hubkit-zoo" / "1")
    working = tmp_path / "working"
    working.mkdir()
    env = {"KAGGLE_INPUT": str(root), "KAGGLE_WORKING": str(working), "HUBKIT_TIME_LIMIT": "3600"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        exec(compile(_code("hubmap-submit"), "submission.ipynb", "exec"), {"__name__": "__main__"})
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert main(["predict", str(comp), "--out", str(tmp_path / "cli.csv"), "--quiet", "--tta", "flip"]) == 0
    notebook = pd.read_csv(working / "submission.csv", dtype=str, keep_default_na=False)
    cli = pd.read_csv(tmp_path / "cli.csv", dtype=str, keep_default_na=False)
    assert notebook.equals(cli)
    assert main(["score", str(working / "submission.csv"), str(comp / "solution.csv")]) == 0
    assert float(capsys.readouterr().out.strip().splitlines()[-1].split()[2]) > 0.8


def test_wheelhouse_builds_hubkit_with_its_model_and_installs_offline(tmp_path):
    from hubkit.wheelhouse import build_wheelhouse, write_dataset_metadata

    wheels = build_wheelhouse(tmp_path / "wheels", download=False)
    (wheel,) = wheels
    assert wheel.name.startswith("hubkit-")
    assert any(n.endswith("zoo/unet-lite0-s2/model.safetensors") for n in zipfile.ZipFile(wheel).namelist())
    meta = json.loads(write_dataset_metadata(tmp_path / "wheels", "me/hubkit-wheels", "hubkit wheels").read_text())
    assert meta["id"] == "me/hubkit-wheels" and meta["licenses"]
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    run = subprocess.run([sys.executable, "-c", "import hubkit, hubkit.zoo as z; print(hubkit.__file__, len(z.find_cards(z.default_zoo_dir())))"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert str(target) in run.stdout and run.stdout.strip().endswith(" 1")


def test_pack_zoo_writes_a_dataset_folder(tmp_path, capsys):
    assert main(["pack-zoo", str(default_zoo_dir()), str(tmp_path / "ds"), "--dataset-id", "me/hubkit-zoo"]) == 0
    assert json.loads((tmp_path / "ds" / "dataset-metadata.json").read_text())["id"] == "me/hubkit-zoo"
    assert (tmp_path / "ds" / "unet-lite0-s2" / "model.safetensors").stat().st_size > 1e6
    assert main(["pack-zoo", str(tmp_path / "nothing"), str(tmp_path / "x"), "--dataset-id", "me/z"]) == 2


def test_notebook_skips_the_wheels_the_wheelhouse_refuses():
    from hubkit.wheelhouse import EXCLUDED_PREFIXES

    for kernel in ("hubmap-submit", "hubmap-train"):
        assert f"skip = {EXCLUDED_PREFIXES!r}".replace("'", '"') in _code(kernel)
