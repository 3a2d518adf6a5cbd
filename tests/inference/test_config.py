import pytest

from hubkit.errors import ConfigError
from hubkit.inference import PredictConfig


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"overlap": 1.0}, r"overlap must be a fraction in \[0, 1\), got 1.0"),
        ({"threshold": 0}, r"threshold must be in \(0, 1\)"),
        ({"min_tissue": 2}, r"min_tissue must be a fraction in \[0, 1\]"),
        ({"sigma_scale": float("nan")}, "sigma_scale must be a positive number"),
        ({"sw_batch_size": 0}, "sw_batch_size must be a whole number >= 1 or None"),
        ({"min_area": -1}, "min_area must be a whole number of pixels >= 0, got -1"),
        ({"min_area": 2.5}, "min_area must be a whole number of pixels >= 0, got 2.5"),
        ({"min_area": True}, "min_area must be a whole number of pixels >= 0, got True"),
        ({"mode": "box"}, "box"),
        ({"tta": "d8"}, "d8"),
    ],
)
def test_settings_out_of_range_are_refused_by_name(settings, message):
    with pytest.raises(ConfigError, match=message):
        PredictConfig(**settings)


@pytest.mark.parametrize("min_area", [None, 0, 8000])
def test_speck_removal_changes_the_fingerprint_of_a_run(min_area):
    others = {PredictConfig(min_area=a).fingerprint() for a in (None, 0, 8000) if a != min_area}
    assert PredictConfig(min_area=min_area).fingerprint() not in others
