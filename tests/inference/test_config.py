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


@pytest.mark.parametrize("capabilities, cpuinfo, native", [
    ({"avx2": True, "avx512_bf16": True}, None, True),  # Cooper Lake, Zen 4
    ({"avx2": True, "amx_bf16": True, "amx_tile": True}, None, True),  # Sapphire Rapids
    ({"avx2": True, "avx512_f": True, "avx512_bf16": False}, "flags\t: fpu avx2 avx512f\n", False),  # Skylake-SP
    ({"avx2": True}, "flags\t: fpu sse4_2 avx2 fma\n", False),  # AVX2 only: this project's EPYC
    (None, "processor\t: 0\nflags\t: fpu avx2 avx512_bf16\n", True),  # a torch without get_capabilities
    (None, "processor\t: 0\nFeatures\t: fp asimd sve bf16\n", True),  # ARM with the BF16 extension
    ({"sve": True}, "Features\t: fp asimd bf16\n", True),  # torch's list misses what the kernel reports
    (None, "Features\t: fp asimd\n", False),
    (None, None, False),  # no /proc/cpuinfo (macOS): float32
])
def test_bf16_autocast_runs_on_a_cpu_only_where_it_has_bf16_hardware(monkeypatch, tmp_path, capabilities,
                                                                      cpuinfo, native):
    import torch

    from hubkit.inference import config

    if capabilities is None:
        monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    else:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities, raising=False)
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(config, "_CPUINFO", str(path))
    config.cpu_has_native_bf16.cache_clear()
    try:
        assert config.cpu_has_native_bf16() is native
        assert config.autocast_dtype(torch.device("cpu")) == (torch.bfloat16 if native else None)
        assert config.autocast_dtype(torch.device("cuda")) == torch.float16
        layer, x = torch.nn.Linear(4, 4), torch.rand(2, 4)
        for enabled in (True, False):
            with config.autocast(torch.device("cpu"), enabled):
                assert layer(x).dtype == (torch.bfloat16 if native and enabled else torch.float32)
    finally:
        config.cpu_has_native_bf16.cache_clear()  # the next test probes this machine again
