import pytest

from hubkit.training import load_config


def test_config_errors_name_the_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"tiles": "t", "learning_rate": 1}')
    with pytest.raises(ValueError, match=r"c\.json: unknown config keys \['learning_rate'\]"):
        load_config(path)
