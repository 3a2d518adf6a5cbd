from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubkit.errors import ConfigError
from hubkit.training import TrainConfig, apply_overrides, load_config
from tests.helpers import load_fuzzed


@pytest.mark.parametrize("name, text, message", [
    ("c.json", '{"tiles": "t", "learning_rate": 1}', r"unknown config keys \['learning_rate'\]; valid keys: .*lr"),
    ("c.json", '{"epochs": 1}', "'tiles' .* is required"),
    ("c.json", '[1, 2]', "a config is a mapping of keys to values, got list"),
    ("c.json", '{"tiles": "t",', "not a readable JSON config"),
    ("c.json", '{"tiles": "t", "lr": NaN}', "lr must be a finite number, got nan"),
    ("c.yaml", "", "a config is a mapping of keys to values, got NoneType"),
    ("c.yaml", "a: [1", "not a readable YAML config"),
    ("c.yaml", "- 1\n- 2", "got list"),
    ("c.yaml", "tiles: t\nepochs: '1'", "epochs must be a whole number, got '1'"),
    ("c.yaml", "tiles: t\nepochs: 1.5", "epochs must be a whole number, got 1.5"),
    ("c.yaml", "tiles: t\nepochs: true", "epochs must be a whole number, got True"),
    ("c.yaml", "tiles: t\nlr: fast", "lr must be a finite number, got 'fast'"),
    ("c.yaml", "tiles: t\nlr: .inf", "lr must be a finite number, got inf"),
    ("c.yaml", "tiles: t\nlr: 0", r"lr must be in \(0, 1\]"),
    ("c.yaml", "tiles: t\nwarmup: 1", r"warmup must be in \[0, 1\)"),
    ("c.yaml", "tiles: t\ncrop: 100", "crop must be a multiple of 32"),
    ("c.yaml", "tiles: t\ntrain_folds: 0", "train_folds must be a list of whole numbers"),
    ("c.yaml", "tiles: t\ntrain_folds: [5]", r"train_folds \[5\] are not folds 0..3"),
    ("c.yaml", "tiles: t\nname: ../../x", "name must be a plain file name"),
    ("c.yaml", "tiles: t\ndevice: gpu", "device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("c.yaml", "tiles: t\nloss: bce+focal", r"loss names \['focal'\] are unknown; combine these with '\+': bce, dice"),
    ("c.yaml", "tiles: t\nsources_valid: vanderbilt", "sources_valid must be a list of strings"),
    ("c.yaml", "tiles: [t]", "tiles must be a string"),
    ("c.yaml", b"\xff\xfe\x00", "not a readable YAML config .*UnicodeDecodeError"),
    ("c.yaml", "tiles: t\ntask: classify\narchitecture: Classifier\ninit: zoo/m",
     r"init \(fine-tuning a zoo model\) is for the segment"),
    ("c.yaml", "tiles: t\nepochs: 0\nlr: -1\nmixup: 2", r"epochs must be in .*; lr must be in .*; mixup must be in"),
])
def test_config_errors_name_the_file_and_the_field(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:")


def test_a_missing_config_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: no such config file"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("items, expected", [
    (["epochs=3"], {"epochs": 3}),
    (["lr=0.01", "name=run2"], {"lr": 0.01, "name": "run2"}),
    (["train_folds=[0,2]"], {"train_folds": [0, 2]}),
    (["epochs=abc"], "--set: epochs must be a whole number, got 'abc'"),
    (["lr=NaN"], "--set: lr must be a finite number, got nan"),
    (["device=cuda:x"], "--set: device must be auto, cpu, cuda or cuda:N"),
    (["epochs"], "--set 'epochs': expected KEY=VALUE"),
    (["epoch=3"], r"--set: unknown keys \['epoch'\]"),
])
def test_overrides(items, expected):
    base = TrainConfig(tiles="t")
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=expected):
            apply_overrides(base, items)
    else:
        got = apply_overrides(base, items)
        assert {k: getattr(got, k) for k in expected} == expected


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=6)


@settings(max_examples=200, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(["tiles", "epochs", "lr", "crop", "train_folds", "loss", "device", "name",
                                             "mixup", "scale", "sources_valid", "extra_key"]), JSON_VALUES, max_size=6))
def test_fuzzed_configs_load_or_raise_config_errors(tmp_path_factory, doc):
    cfg = load_fuzzed(tmp_path_factory.mktemp("fuzz"), "c.json", doc, load_config, ConfigError)
    assert cfg is None or (cfg.validate("again") is cfg and isinstance(cfg.tiles, str) and cfg.tiles)


CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load_and_name_models_that_ship(path):
    cfg = load_config(path)
    assert cfg.tiles and cfg.name
    if cfg.init:  # a fine-tune starts from a model in the repository, not from a run's output
        assert (Path(__file__).parents[2] / cfg.init / "card.json").is_file(), cfg.init
