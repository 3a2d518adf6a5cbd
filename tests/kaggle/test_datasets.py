import json

from hubkit.cli import main
from hubkit.models.zoo import default_zoo_dir


def test_pack_zoo_writes_a_dataset_folder(tmp_path, capsys):
    assert main(["pack-zoo", str(default_zoo_dir()), str(tmp_path / "ds"), "--dataset-id", "me/hubkit-zoo"]) == 0
    assert json.loads((tmp_path / "ds" / "dataset-metadata.json").read_text())["id"] == "me/hubkit-zoo"
    assert (tmp_path / "ds" / "unet-lite0-s2" / "model.safetensors").stat().st_size > 1e6
    assert main(["pack-zoo", str(tmp_path / "nothing"), str(tmp_path / "x"), "--dataset-id", "me/z"]) == 2
