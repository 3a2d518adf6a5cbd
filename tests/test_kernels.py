import json

import pytest

from tests.helpers import KERNELS, kernel_code

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


def test_notebook_skips_the_wheels_the_wheelhouse_refuses():
    from hubkit.kaggle import EXCLUDED_PREFIXES

    for kernel in ("hubmap-submit", "hubmap-train"):
        assert f"skip = {EXCLUDED_PREFIXES!r}".replace("'", '"') in kernel_code(kernel)
