"""Binding: clear errors for a busy port, and sockets asyncio will mark TCP_NODELAY; the
event loop and HTTP parser uvicorn runs the server with."""

from __future__ import annotations

import asyncio
import socket
import sys
import types
from pathlib import Path

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agnes_mcp.errors import BindError
from agnes_mcp.serve import bind, uvicorn_config
from agnes_mcp.settings import load_settings


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


def test_asyncio_loop_even_where_uvloop_is_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """uvicorn's "auto" would run uvloop wherever some package installed it; its subprocess
    spawning crashed the process (SIGSEGV) starting git-http-backend among many threads."""
    fake = types.ModuleType("uvloop")

    def new_event_loop() -> asyncio.AbstractEventLoop:
        raise AssertionError("the server chose uvloop")

    fake.new_event_loop = new_event_loop  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uvloop", fake)
    config = uvicorn_config(load_settings(data_dir=tmp_path), app=_no_app)
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
    config.load()
    assert issubclass(config.http_protocol_class, HttpToolsProtocol)  # llhttp, not h11


async def _no_app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not called")
