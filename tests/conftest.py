"""Fixtures for every test: a guard that fails any test reaching the network, and the real data
from ../shared/data (tests that need it skip with a reason where it is absent)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from hubkit.testbed.data import find_data_dir
from tests.helpers import guard_network

# Fuzzing draws the same examples on every run (CI never flakes on a new draw); set
# HYPOTHESIS_PROFILE=explore to draw new ones while hunting for bugs.
settings.register_profile("hubkit", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "hubkit"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HUGGINGFACE_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection to a non-loopback address fails the test loudly."""
    guard_network(monkeypatch)
    yield


@pytest.fixture(scope="session")
def data_dir():
    """The shared real-data folder; tests that need it skip where it is absent."""
    path = find_data_dir()
    if path is None:
        pytest.skip("real data not found: ../shared/data beside the checkout (or $HUBKIT_DATA) is absent")
    return path
