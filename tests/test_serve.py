"""Binding: clear errors for a busy port, and sockets asyncio will mark TCP_NODELAY."""

from __future__ import annotations

import socket

import pytest

from agnes_mcp.errors import BindError
from agnes_mcp.serve import bind


def test_listening_socket_is_tcp_so_connections_get_nodelay() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        # asyncio only sets TCP_NODELAY on accepted sockets whose proto is IPPROTO_TCP;
        # without it each keep-alive response waits ~40 ms for a delayed ACK.
        assert sock.proto == socket.IPPROTO_TCP
        client = socket.create_connection(sock.getsockname())
        accepted, _ = sock.accept()
        assert accepted.proto == socket.IPPROTO_TCP
        accepted.close()
        client.close()
    finally:
        sock.close()


def test_port_in_use_is_a_clear_error() -> None:
    first = bind("127.0.0.1", 0)
    try:
        with pytest.raises(BindError) as caught:
            bind("127.0.0.1", first.getsockname()[1])
        assert "already in use" in caught.value.message and "--port" in (caught.value.hint or "")
    finally:
        first.close()


def test_unknown_host_is_a_clear_error() -> None:
    with pytest.raises(BindError, match="Cannot listen"):
        bind("192.0.2.123", 0)  # TEST-NET address: not on this machine
