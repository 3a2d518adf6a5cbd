import socket
import urllib.request

import pytest

from tests.helpers import NetworkAccessError


def _chain(err):
    while err is not None:
        yield err
        err = getattr(err, "reason", None) if not isinstance(getattr(err, "reason", None), str) else None


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: socket.create_connection(("93.184.216.34", 80), timeout=1),
        lambda: urllib.request.urlopen("https://huggingface.co", timeout=1),
        lambda: socket.getaddrinfo("pypi.org", 443),
    ],
    ids=["raw-socket", "urllib", "dns"],
)
def test_network_access_fails_loudly(attempt):
    with pytest.raises(Exception) as info:
        attempt()
    assert any(isinstance(e, NetworkAccessError) for e in _chain(info.value)), repr(info.value)
