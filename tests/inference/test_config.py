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
        ({"seed_threshold": 1.0}, r"seed_threshold must be in \(0, 1\) and not below the threshold"),
        ({"threshold": 0.5, "seed_threshold": 0.4}, "seed_threshold must be in .* not below the threshold, got 0.4"),
        ({"mode": "box"}, "box"),
        ({"tta": "d8"}, "d8"),
    ],
)
def test_settings_out_of_range_are_refused_by_name(settings, message):
    with pytest.raises(ConfigError, match=message):
        PredictConfig(**settings)


@pytest.mark.parametrize("seed_threshold", [None, 0.7, 0.9])
def test_a_seed_threshold_changes_the_fingerprint_of_a_run(seed_threshold):
    others = {PredictConfig(seed_threshold=s).fingerprint() for s in (None, 0.7, 0.9) if s != seed_threshold}
    assert PredictConfig(seed_threshold=seed_threshold).fingerprint() not in others


@pytest.mark.parametrize("min_area", [None, 0, 8000])
def test_speck_removal_changes_the_fingerprint_of_a_run(min_area):
    others = {PredictConfig(min_area=a).fingerprint() for a in (None, 0, 8000) if a != min_area}
    assert PredictConfig(min_area=min_area).fingerprint() not in others
