import json

import pytest

from hubkit.errors import ConfigError
from hubkit.kaggle.metadata import KERNEL_FIELDS, check_kernel_metadata, write_dataset_metadata


@pytest.mark.parametrize("dataset_id, ok", [
    ("me/hubkit-zoo", True), ("your-name/hubkit-train-wheels", True),
    ("hubkit-zoo", False), ("me/zoo", False), ("me/Hubkit-Zoo", False), ("me/../etc", False),
])
def test_dataset_ids_are_owner_slash_slug(tmp_path, dataset_id, ok):
    if ok:
        meta = json.loads(write_dataset_metadata(tmp_path, dataset_id, "t").read_text())
        assert meta["id"] == dataset_id and meta["licenses"]
    else:
        with pytest.raises(ConfigError, match="owner/slug"):
            write_dataset_metadata(tmp_path, dataset_id, "t")


GOOD = {k: [] for k in ("dataset_sources", "competition_sources", "kernel_sources", "model_sources")}
GOOD.update(id="me/k", title="k", code_file="k.ipynb", language="python", kernel_type="notebook", is_private=True,
            enable_gpu=True, enable_tpu=False, enable_internet=False, machine_shape="NvidiaTeslaT4")


@pytest.mark.parametrize("change, problem", [
    ({}, None),
    ({"machine_shape": "None"}, "machine_shape 'None' is not one of"),
    ({"machine_shape": "NvidiaTeslaP100"}, "is not one of"),
    ({"enable_gpu": False}, "on a kernel with enable_gpu and enable_tpu false"),
    ({"enable_internet": None}, "missing enable_internet"),
    ({"enable_internet": "false"}, "enable_internet must be true or false"),
    ({"code_file": "other.ipynb"}, "code_file 'other.ipynb' is not beside it"),
])
def test_kernel_metadata_checks(tmp_path, change, problem):
    meta = {**GOOD, **change}
    meta = {k: v for k, v in meta.items() if v is not None}
    (tmp_path / "k.ipynb").write_text("{}")
    (tmp_path / "kernel-metadata.json").write_text(json.dumps(meta))
    if problem is None:
        assert set(KERNEL_FIELDS) <= set(check_kernel_metadata(tmp_path / "kernel-metadata.json"))
    else:
        with pytest.raises(ConfigError, match=problem):
            check_kernel_metadata(tmp_path / "kernel-metadata.json")
