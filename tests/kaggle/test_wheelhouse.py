import json
import os
import subprocess
import sys
import zipfile


def test_wheelhouse_builds_hubkit_with_its_model_and_installs_offline(tmp_path):
    from hubkit.kaggle import build_wheelhouse, write_dataset_metadata

    wheels = build_wheelhouse(tmp_path / "wheels", download=False)
    (wheel,) = wheels
    assert wheel.name.startswith("hubkit-")
    assert any(n.endswith("models/builtin/unet-lite0-s2/model.safetensors") for n in zipfile.ZipFile(wheel).namelist())
    meta = json.loads(write_dataset_metadata(tmp_path / "wheels", "me/hubkit-wheels", "hubkit wheels").read_text())
    assert meta["id"] == "me/hubkit-wheels" and meta["licenses"]
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    run = subprocess.run([sys.executable, "-c", "import hubkit, hubkit.models.zoo as z; print(hubkit.__file__, len(z.find_cards(z.default_zoo_dir())))"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert str(target) in run.stdout and run.stdout.strip().endswith(" 1")
