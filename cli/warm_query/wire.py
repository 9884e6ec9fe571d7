"""Messages between the warm client and server: a 4-byte length, then the bytes; and the
peer check (the other end of the socket must be this same user)."""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any

MAX_MESSAGE = 1 << 31
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class WireError(Exception):
    """The other end went away or sent something that is not a message."""


def send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def send_json(sock: socket.socket, data: dict[str, Any]) -> None:
    send(sock, json.dumps(data).encode())


def _exact(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise WireError("the other end closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">I", _exact(sock, 4))
    if size >= MAX_MESSAGE:
        raise WireError("message too large")
    return _exact(sock, size)


def receive_json(sock: socket.socket) -> dict[str, Any]:
    try:
        data = json.loads(receive(sock))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError("not a JSON message") from exc
    if not isinstance(data, dict):
        raise WireError("not a JSON object")
    return data


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end (SO_PEERCRED), ``None`` where the
    platform cannot say (the warm path is then not used)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, _CRED.size)
    except OSError:
        return None
    _, uid, _ = _CRED.unpack(raw)
    return int(uid)


def peer_is(sock: socket.socket, uid: int | None = None) -> bool:
    """The other end runs as ``uid`` (default: this process's user)."""
    found = peer_uid(sock)
    return found is not None and found == (os.getuid() if uid is None else uid)
