import json

import nbformat
import pytest

from hubkit.kaggle.metadata import check_kernel_metadata
from tests.helpers import KERNELS, kernel_code

KERNEL_TABLE = [
    # kernel, internet, GPU, datasets it reads
    ("hubmap-submit", False, True, ["your-name/hubkit-wheels", "your-name/hubkit-zoo"]),
    ("hubmap-train", False, True, ["your-name/hubkit-train-wheels", "your-name/glomerulus-tiles"]),
    ("hubkit-wheels", True, True, ["your-name/hubkit-source"]),  # the submission's image: same machine shape
]


@pytest.mark.parametrize("kernel, internet, gpu, datasets", KERNEL_TABLE)
def test_kernel_metadata_is_complete_and_valid(kernel, internet, gpu, datasets):
    meta = check_kernel_metadata(KERNELS / kernel / "kernel-metadata.json")
    assert meta["enable_internet"] is internet  # the Kaggle CLI defaults it to true: say it
    assert meta["enable_gpu"] is gpu and meta.get("machine_shape") == "NvidiaTeslaT4"  # two T4s; P100 fails on cu128
    assert meta["dataset_sources"] == datasets
    if kernel == "hubmap-submit":
        assert meta["competition_sources"] == ["hubmap-kidney-segmentation"]


@pytest.mark.parametrize("kernel", [k[0] for k in KERNEL_TABLE])
def test_notebooks_are_valid_nbformat_45(kernel):
    meta = json.loads((KERNELS / kernel / "kernel-metadata.json").read_text())
    book = nbformat.read(KERNELS / kernel / meta["code_file"], as_version=nbformat.NO_CONVERT)
    assert (book.nbformat, book.nbformat_minor) == (4, 5)
    nbformat.validate(book)  # cell ids included: nbformat.read would only warn and repair
    ids = [c["id"] for c in book.cells]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("kernel, requirement", [("hubmap-submit", "hubkit"), ("hubmap-train", "hubkit[train]")])
def test_notebooks_install_with_pip_checking_requirements_against_the_image(kernel, requirement):
    code = kernel_code(kernel)
    assert f'"--no-index", "--find-links", wheels, "{requirement}"' in code
    assert "--no-deps" not in code  # pip must see the image's packages satisfy hubkit's requirements


def test_wheel_kernel_builds_from_a_copy_in_working():
    code = kernel_code("hubkit-wheels")
    assert 'SRC = os.path.join(WORKING, "hubkit-source")' in code and 'image="installed"' in code
