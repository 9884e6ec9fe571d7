"""The unreachable-server URL of the CLI tests stays unreachable while a test uses it."""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit

import pytest

from tests.refused_port import refused_url


def test_its_port_refuses_connections_and_no_listener_can_take_it() -> None:
    with refused_url() as url:
        port = urlsplit(url).port
        assert port is not None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=30).close()
        with socket.socket() as other, pytest.raises(OSError) as taken:
            other.bind(("127.0.0.1", port))  # another worker's server asking for it
        assert taken.value.errno == errno.EADDRINUSE
