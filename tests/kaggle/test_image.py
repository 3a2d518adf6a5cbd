import pytest

from hubkit.errors import ConfigError
from hubkit.kaggle.image import ImageSpec, canonical_name, get_image, image_names, wheel_name_version


def test_the_shipped_kaggle_image_is_python_312_with_its_torch_and_numpy():
    image = get_image("kaggle")
    assert image.python == "3.12" and image.platforms
    versions = (image.packages["torch"], image.packages["numpy"], image.packages["pydantic"])
    assert versions == ("2.10.0", "2.0.2", "2.12.3")
    assert "segmentation-models-pytorch" not in image.packages  # what the wheel set must bring


@pytest.mark.parametrize("text, problem", [
    ("# Python 3.12\nnumpy>=2\n", ":2: expected 'name==version'"),
    ("numpy==2.0.2\n", "no '# ... Python 3.X' header"),
    ("# Python 3.12\nnumpy==2.0.2 ; python_version<'3'\n", ":2: expected"),
])
def test_a_bad_spec_names_the_file_and_line(tmp_path, text, problem):
    path = tmp_path / "image.txt"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem) as err:
        ImageSpec.read(path)
    assert str(path) in str(err.value)


def test_get_image_lists_the_valid_names():
    with pytest.raises(ConfigError, match="valid names: kaggle, installed"):
        get_image("colab")
    assert image_names() == ["kaggle", "installed"]


def test_the_installed_image_is_the_running_interpreter():
    import sys

    import numpy

    image = get_image("installed")
    assert image.python == f"{sys.version_info.major}.{sys.version_info.minor}" and not image.platforms
    assert image.packages["numpy"] == numpy.__version__


@pytest.mark.parametrize("wheel, change", [
    ("numpy-2.0.2-cp312-cp312-manylinux_2_17_x86_64.whl", False),
    ("numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl", True),  # upgrade
    ("Typing_Extensions-4.16.0-py3-none-any.whl", True),  # names compared canonically
    ("torch-2.10.0-3-cp312-cp312-manylinux_2_28_x86_64.whl", False),  # build tag; image has 2.10.0+cu128
    ("segmentation_models_pytorch-0.6.0-py3-none-any.whl", False),  # not in the image
])
def test_changes_lists_wheels_that_would_move_an_image_package(wheel, change):
    image = ImageSpec("3.12", {"numpy": "2.0.2", "typing-extensions": "4.15.0", "torch": "2.10.0+cu128"})
    assert bool(image.changes([wheel])) is change


@pytest.mark.parametrize("name, expected", [("Typing_Extensions", "typing-extensions"), ("ruamel.yaml", "ruamel-yaml")])
def test_canonical_name(name, expected):
    assert canonical_name(name) == expected


def test_wheel_name_version_refuses_other_files():
    assert wheel_name_version("a_b-1.0-py3-none-any.whl") == ("a-b", "1.0")
    with pytest.raises(ConfigError, match="not a wheel file name"):
        wheel_name_version("hubkit-source.tar.gz")


def test_constraints_pin_public_versions_and_skip():
    image = ImageSpec("3.12", {"torch": "2.10.0+cu128", "hubkit": "0.1.0"})
    assert image.constraints(skip=["hubkit"]) == "torch==2.10.0\n"
