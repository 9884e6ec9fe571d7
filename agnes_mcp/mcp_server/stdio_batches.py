"""JSON-RPC batches on stdio for sessions of protocol 2025-03-26, which must take them.

MCP 2025-03-26 says an implementation MUST support receiving JSON-RPC batches; 2025-06-18
removed them. The streamable HTTP endpoint serves them for such sessions
(:mod:`agnes_mcp.api.mcp_batches`); on stdio the SDK refused every batch line, in a
session that negotiated 2025-03-26 too. Here a batch line is handed on to the relay
(:mod:`.stdio_transport`) as :data:`BATCH_KEY` marker, which the SDK passes on as an
item it could not read. In a session whose ``initialize`` was answered with a version
that has batches, the relay serves each message of it on its own and answers on one
line, as JSON-RPC says: an array of the answers to its requests (none when it held
none). Before ``initialize``, or in a session of a later version, the batch is refused
with a JSON-RPC error, as before.
"""

from __future__ import annotations

import json
from typing import Any, cast

from mcp_types import (
    INVALID_REQUEST,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCRequest,
    JSONRPCResponse,
)
from pydantic import RootModel, ValidationError

BATCH_VERSIONS = frozenset({"2025-03-26"})  # the protocol versions that have batches
BATCH_KEY = "agnes.batch"
EMPTY_BATCH = "Invalid Request: the batch is empty (send at least one message)."
# The messages one batch may hold. Each is served side by side with the others: a batch
# of 5,000 pings took 14 s over HTTP (1,000: 1.6 s), and the body limit let one hold
# 250,000 calls, which held the server for as long.
MAX_BATCH_MESSAGES = 100
DUPLICATE_IDS = (
    "Invalid Request: more than one request of the batch has the id {ids}; each request "
    "needs an id of its own (one answer is matched to each). None of it was run."
)
BATCH_TOO_LARGE = (
    "Invalid Request: the batch holds {count:,} messages; one batch takes at most {most} "
    "(send the rest in further batches). None of it was run."
)
RequestId = str | int


def batch_line(line: str) -> str | None:
    """The marker line for ``line`` when it is a JSON array (a batch), else ``None``."""
    if not line.lstrip().startswith("["):
        return None
    try:
        found = json.loads(line)
    except ValueError:
        return None  # not JSON: answered -32700 as any such line
    return json.dumps({BATCH_KEY: found}) + "\n" if isinstance(found, list) else None


def batch_of(exc: Exception) -> list[Any] | None:
    """The batch an unreadable item stands for, when it is a marker line's."""
    errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else []
    for error in errors:
        value = error.get("input")
        if isinstance(value, dict) and isinstance(value.get(BATCH_KEY), list):
            return cast("list[Any]", value[BATCH_KEY])
    return None


class Answers(RootModel[list[JSONRPCMessage]]):
    """One line answering a batch: what the SDK's stdio writer writes (it dumps the
    ``message`` of what it is given)."""


def answers_line(answers: list[JSONRPCMessage]) -> JSONRPCMessage:
    """``answers`` as one message to write: a JSON array on one line."""
    return cast(JSONRPCMessage, Answers(answers))


def _repeated_ids(batch: list[Any]) -> list[Any]:
    """The ids more than one request of ``batch`` has."""
    seen: set[tuple[str, Any]] = set()
    repeated: list[Any] = []
    for message in batch:
        if not isinstance(message, dict) or "method" not in message:
            continue
        ident = message.get("id")
        if not isinstance(ident, (str, int)) or isinstance(ident, bool):
            continue
        key = (type(ident).__name__, ident)
        if key in seen and ident not in repeated:
            repeated.append(ident)
        seen.add(key)
    return repeated


def refused_batch(batch: list[Any]) -> JSONRPCError | None:
    """The answer refusing ``batch`` whole (it is empty, two of its requests share an id,
    or it holds too many messages), or ``None`` to serve it. Two requests of one id were
    served side by side over HTTP, where the SDK keeps one answer stream per id: one
    never got its answer, and the batch waited for ever."""
    if not batch:
        return JSONRPCError(
            jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=EMPTY_BATCH)
        )
    repeated = _repeated_ids(batch)
    if repeated:
        message = DUPLICATE_IDS.format(ids=", ".join(json.dumps(i) for i in repeated[:5]))
        return JSONRPCError(
            jsonrpc="2.0",
            id=None,
            error=ErrorData(
                code=INVALID_REQUEST, message=message, data={"duplicate_ids": repeated[:20]}
            ),
        )
    if len(batch) > MAX_BATCH_MESSAGES:
        message = BATCH_TOO_LARGE.format(count=len(batch), most=MAX_BATCH_MESSAGES)
        data = {"messages": len(batch), "limit": MAX_BATCH_MESSAGES}
        return JSONRPCError(
            jsonrpc="2.0",
            id=None,
            error=ErrorData(code=INVALID_REQUEST, message=message, data=data),
        )
    return None


class Batch:
    """The answers of one batch, gathered until every request of it is answered."""

    def __init__(self) -> None:
        self.waiting: set[RequestId] = set()
        self.answers: list[JSONRPCMessage] = []

    @property
    def done(self) -> bool:
        return not self.waiting


class SessionBatches:
    """Whether the stdio session takes batches (the version its ``initialize`` was
    answered with), and the batches whose answers are being gathered."""

    def __init__(self) -> None:
        self.version: str | None = None
        self._opening: set[RequestId] = set()
        self._of_request: dict[RequestId, Batch] = {}

    @property
    def taken(self) -> bool:
        return self.version in BATCH_VERSIONS

    def read(self, message: JSONRPCMessage) -> None:
        """Note a message read from the client (an ``initialize`` to watch the answer of)."""
        if isinstance(message, JSONRPCRequest) and message.method == "initialize":
            self._opening.add(message.id)

    def wait_for(self, batch: Batch, request_id: RequestId) -> None:
        batch.waiting.add(request_id)
        self._of_request[request_id] = batch

    def cancelled(self, request_id: object) -> Batch | None:
        """Note a request the client cancelled: it is never answered (MCP), so its batch
        waits for it no longer; that batch when it is now whole."""
        if not isinstance(request_id, (str, int)):
            return None
        batch = self._of_request.pop(request_id, None)
        if batch is None:
            return None
        batch.waiting.discard(request_id)
        return batch if batch.done else None

    def answered(self, message: JSONRPCMessage) -> tuple[bool, Batch | None]:
        """Note an answer going to the client: whether it is part of a batch's answer,
        and that batch when it is now whole."""
        if not isinstance(message, (JSONRPCResponse, JSONRPCError)) or message.id is None:
            return False, None
        if message.id in self._opening:
            self._opening.discard(message.id)
            if isinstance(message, JSONRPCResponse) and self.version is None:
                version = message.result.get("protocolVersion")
                self.version = version if isinstance(version, str) else None
        batch = self._of_request.pop(message.id, None)
        if batch is None:
            return False, None
        batch.waiting.discard(message.id)
        batch.answers.append(message)
        return True, batch if batch.done else None
