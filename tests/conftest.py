"""Shared fixtures: real data from ../shared/data (skipped with a reason where absent) and a
guard that fails any test that tries to reach the network."""

from __future__ import annotations

import os
import socket

import pytest

from hubkit.sample import find_data_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HUGGINGFACE_HUB_OFFLINE", "1")


class NetworkAccessError(RuntimeError):
    """Raised when code under test tries to open a network connection."""


def _local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = str(address[0]) if address else ""
    return host in ("localhost", "::1") or host.startswith("127.")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection to a non-loopback address fails the test loudly."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        if not _local(address):
            raise NetworkAccessError(f"network access during a test: connect to {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not _local(address):
            raise NetworkAccessError(f"network access during a test: connect to {address!r}")
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            raise NetworkAccessError(f"network access during a test: DNS lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


@pytest.fixture(scope="session")
def data_dir():
    """The shared real-data folder; tests that need it skip where it is absent."""
    path = find_data_dir()
    if path is None:
        pytest.skip("real data not found: ../shared/data beside the checkout (or $HUBKIT_DATA) is absent")
    return path


def dice(a, b) -> float:
    """Dice of two binary masks (1.0 when both are empty)."""
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * (a & b).sum() / total
