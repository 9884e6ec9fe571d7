"""The client side of the server's REST API, shared by the CLI, the workspace MCP backend
and ``agnes pull``/``agnes push``: JSON calls, Arrow IPC results, and the server's errors kept
whole (code, status, hint, details, next step) so a workspace can pass them on as is.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from agnes_sync.caller import CALLER, CallCancelled, Caller
from agnes_sync.errors import AgnesError
from agnes_sync.not_unicode import not_unicode

if TYPE_CHECKING:
    import httpx
    import pyarrow as pa

ARROW_STREAM = "application/vnd.apache.arrow.stream"
WHOAMI = "/api/whoami"
WHOAMI_KEYS = frozenset({"email", "groups", "scopes", "is_admin"})


class ArgumentTooLong(AgnesError):
    code = "invalid_arguments"
    status = 400


class ServerError(AgnesError):
    """The server answered with an error; its ``code`` and the rest are the server's own."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        hint: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        next_step: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, details=details)
        self.status = status
        self.code = code
        self.next_step = next_step

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.next_step is not None:
            body["next_step"] = self.next_step
        return body


class AnswerIncomplete(AgnesError):
    """An answer's body ended before all of its rows (the server failed while sending it,
    or the connection was cut): never taken for a whole, smaller answer."""

    code = "answer_incomplete"
    status = 502
    default_hint = "Send the request again."


class ServerUnreachable(AgnesError):
    code = "unreachable"
    status = 503
    # Read by people at a terminal and by agents (the workspace's MCP tools relay it): what
    # to do, in words both can pass on.
    default_hint = (
        "Start the server ('agnes serve', or 'agnes demo'), or point at the right one: "
        "'agnes whoami' shows the URL in use (--server-url or AGNES_SERVER_URL change it)."
    )


class ServerTimeout(ServerUnreachable):
    """The request reached the server, which had not answered when the client's time was
    up: it may well still be working on it (a sync keeps going)."""

    code = "server_timeout"
    status = 504
    default_hint = (
        "The server may still be working on it: check its state (e.g. 'agnes admin "
        "sync-status' after a sync) before trying again."
    )


def transport_failure(exc: Exception, base_url: str, timeout: float) -> ServerUnreachable:
    """What a failed exchange with the server means: it did not answer in time (the
    request got there), or it could not be reached at all."""
    import httpx

    if isinstance(exc, httpx.ReadTimeout):
        return ServerTimeout(
            f"The Agnes server at {base_url} had not answered after {timeout:g} s "
            "(the client's timeout)."
        )
    reason = str(exc).rstrip(".") or type(exc).__name__
    return unreachable(f"Cannot reach the Agnes server at {base_url}: {reason}.", base_url)


def unreachable(said: str, base_url: str) -> ServerUnreachable:
    """``said`` as a :class:`ServerUnreachable`. At the built-in default URL the hint says
    it is that default: a newcomer with nothing set learns that no URL was given or saved,
    not only to check the one in use."""
    from agnes_sync.credentials import DEFAULT_SERVER_URL, config_home

    if base_url.rstrip("/") != DEFAULT_SERVER_URL:
        return ServerUnreachable(said)
    return ServerUnreachable(
        said,
        hint=f"{DEFAULT_SERVER_URL} is also the built-in default, used when no server URL "
        f"is given (--server-url, AGNES_SERVER_URL) or saved in {config_home()} ('agnes "
        "init' and 'agnes login' save one): name your server if you meant another, or "
        "start one here ('agnes demo', 'agnes serve').",
    )


class NotAgnesServer(AgnesError):
    """Something answers at the URL, but not the way an Agnes server does: another web
    server, or a path in front of Agnes's root. What it sent is never shown (it may be a
    whole HTML page); its status and content type are."""

    code = "not_agnes"
    status = 502
    default_hint = (
        "Check --server-url / AGNES_SERVER_URL: it should be the address 'agnes serve' "
        "prints, e.g. http://127.0.0.1:8000 (without /mcp)."
    )


class ServerApi:
    def __init__(
        self, server_url: str, token: str | None, *, timeout: float = 60.0, agent: str = "agnes"
    ) -> None:
        self._headers = {"User-Agent": agent}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.base_url = server_url.rstrip("/")
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._one_shot: httpx.Client | None = None

    def _new_client(self, *, keep_alive: bool) -> httpx.Client:
        import httpx

        return httpx.Client(
            base_url=self.base_url,
            headers=self._headers,
            timeout=self._timeout,
            # Plain http has no TLS to verify; not loading CA certificates saves ~35 ms
            # a command. https keeps full verification.
            verify=not self.base_url.startswith("http://"),
            limits=httpx.Limits() if keep_alive else httpx.Limits(max_keepalive_connections=0),
        )

    @property
    def _http(self) -> httpx.Client:
        """The HTTP client, made on first use: work that stays local never imports httpx."""
        if self._client is None:
            self._client = self._new_client(keep_alive=True)
        return self._client

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        if "json" in kwargs:
            kwargs = _json_body(kwargs)
        caller = CALLER.get()
        try:
            if caller is None:
                response = self._http.request(method, path, **kwargs)
            else:
                response = self._stoppable(caller, method, path, **kwargs)
        except httpx.InvalidURL:  # an argument put in the path or query is too long for one
            raise ArgumentTooLong(_too_long(path, kwargs.get("params"))) from None
        except httpx.TransportError as exc:
            if caller is not None and caller.cancelled:
                raise CallCancelled(
                    f"The call was cancelled by its caller; its request to {self.base_url} "
                    "was dropped, which stops the server's work on it."
                ) from None
            raise transport_failure(exc, self.base_url, self._timeout) from None
        if response.status_code >= 400:
            raise error_of(response, self.base_url)
        return response

    def _stoppable(self, caller: Caller, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The request on a connection of its own, shut when ``caller`` gives up: a blocked
        read ends at once, and the server sees its client hang up and stops the query (a
        relayed query would otherwise run on to the server's timeout for nobody, holding
        the user's query place). A pooled connection cannot be reached to be shut, so these
        requests open a new one each (a local connect; a TLS handshake on https)."""
        if self._one_shot is None:
            self._one_shot = self._new_client(keep_alive=False)
        key = object()

        def connected(event: str, info: dict[str, Any]) -> None:
            if event == "connection.connect_tcp.complete":
                sock = info["return_value"].get_extra_info("socket")
                caller.on_cancel(key, lambda: sock.shutdown(socket.SHUT_RDWR))

        try:
            return self._one_shot.request(method, path, extensions={"trace": connected}, **kwargs)
        finally:
            caller.discard(key)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise not_agnes(response, self.base_url, "JSON") from None

    def request_text(self, method: str, path: str, **kwargs: Any) -> str:
        return self._send(method, path, **kwargs).text

    def get_text_if_changed(self, path: str, etag: str | None) -> tuple[str | None, str | None]:
        """GET with ``If-None-Match``: ``(None, etag)`` when the server says 304,
        else ``(body, the new ETag)``."""
        headers = {"If-None-Match": f'"{etag}"'} if etag else {}
        response = self._send("GET", path, headers=headers)
        tag = response.headers.get("etag")
        tag = tag.removeprefix("W/").strip('"') if tag else None
        if response.status_code == 304:
            return None, tag or etag
        return response.text, tag

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def whoami(self) -> dict[str, Any]:
        """``GET /api/whoami``, checked to be an Agnes answer (the first call of ``agnes
        login``/``init``/``whoami``, so a wrong URL is named before anything is stored)."""
        me = self.get(WHOAMI)
        if not (isinstance(me, dict) and me.keys() >= WHOAMI_KEYS):
            raise NotAgnesServer(
                f"{self.base_url} is not an Agnes server: its answer to GET {WHOAMI} is JSON "
                "without an Agnes user in it."
            )
        return me

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body or {})

    def put(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("PUT", path, json=body or {})

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def post_arrow(self, path: str, body: dict[str, Any]) -> tuple[pa.Table, dict[str, Any]]:
        """POST for an Arrow IPC answer: the table and its ``agnes.*`` metadata, decoded."""
        response = self._send("POST", path, json=body, headers={"Accept": ARROW_STREAM})
        return self._arrow(response, path)

    def get_arrow(self, path: str, **params: Any) -> tuple[pa.Table, dict[str, Any]]:
        clean = {k: v for k, v in params.items() if v is not None}
        response = self._send("GET", path, params=clean, headers={"Accept": ARROW_STREAM})
        return self._arrow(response, path)

    def _arrow(self, response: httpx.Response, path: str) -> tuple[pa.Table, dict[str, Any]]:
        if not response.headers.get("content-type", "").startswith(ARROW_STREAM):
            raise not_agnes(response, self.base_url, "Arrow IPC")
        import pyarrow.ipc  # only Arrow answers need it (a pull never does)

        table = pyarrow.ipc.open_stream(response.content).read_all()
        metadata: dict[str, Any] = {}
        for key, value in (table.schema.metadata or {}).items():
            name = key.decode()
            if name.startswith("agnes."):
                metadata[name.removeprefix("agnes.")] = json.loads(value)
        said = metadata.get("row_count")
        # An Arrow stream cut between two batches reads as a whole one (its end marker is
        # optional): the count sent ahead of the rows tells a cut one from a smaller answer.
        if isinstance(said, int) and not isinstance(said, bool) and said != table.num_rows:
            raise AnswerIncomplete(
                f"The answer from {self.base_url}{path} ended after {table.num_rows:,} of "
                f"its {said:,} rows.",
                details={"rows_received": table.num_rows, "row_count": said},
            )
        return table.replace_schema_metadata(None), metadata

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: Any = None,
    ) -> Iterator[httpx.Response]:
        """A response whose body is read in chunks (downloads, uploads); errors as above."""
        import httpx

        try:
            with self._http.stream(
                method, path, params=params, headers=headers, content=content
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_of(response, self.base_url)
                yield response
        except httpx.InvalidURL:
            raise ArgumentTooLong(_too_long(path, params)) from None
        except httpx.TransportError as exc:
            raise transport_failure(exc, self.base_url, self._timeout) from None

    def close(self) -> None:
        for client in (self._client, self._one_shot):
            if client is not None:
                client.close()


def _too_long(path: str, params: Any) -> str:
    """What says that a URL is too long: its length, counting the query string (the
    path alone is short when a long argument went into the query), and the longest
    argument's name."""
    fields = {str(k): str(v) for k, v in dict(params or {}).items()}
    length = len(path) + (len(urlencode(fields)) + 1 if fields else 0)
    longest = max(fields, key=lambda k: len(fields[k]), default=None)
    named = f" ({longest!r}, {len(fields[longest]):,} characters)" if longest else ""
    return (
        f"An argument of this request is too long to send{named}: the URL would hold "
        f"{length:,} characters."
    )


_REFUSED_HINT = (
    "The server refused the token: check the one this client uses (--token, "
    "AGNES_TOKEN, or the workspace's own from 'agnes init'); an admin or your "
    "account page (/me) makes a new one."
)


def _no_token_hint(base_url: str) -> str:
    from agnes_sync.credentials import config_home

    return (
        f"This client sent no token: none was given (--token, AGNES_TOKEN) and none for "
        f"{base_url} is stored in {config_home()}, the config folder this process reads "
        "(HOME, AGNES_CONFIG_HOME or XDG_CONFIG_HOME decide it; 'agnes init' and 'agnes "
        "login' write there). Give the token, or run 'agnes login' with this environment."
    )


def error_of(response: httpx.Response, base_url: str) -> AgnesError:
    """The error an answer of 400 or more stands for: the server's own, when it answers as
    Agnes does (``{"error": {"code", "message", ...}}``), else that it is not Agnes."""
    try:
        error = response.json()["error"]
        hint = error.get("hint")
        if response.status_code == 401:  # the server's hint is for raw HTTP clients
            # 'unauthenticated': no token at all (every refused token has a code of its own)
            sent_none = error.get("code") == "unauthenticated"
            hint = _no_token_hint(base_url) if sent_none else _REFUSED_HINT
        return ServerError(
            response.status_code,
            str(error["code"]),
            str(error["message"]),
            hint,
            details=error.get("details") if isinstance(error.get("details"), dict) else None,
            next_step=error.get("next_step") if isinstance(error.get("next_step"), dict) else None,
        )
    except (ValueError, KeyError, TypeError):
        return not_agnes(response, base_url)


def not_agnes(response: httpx.Response, base_url: str, expected: str | None = None) -> AgnesError:
    """An answer no Agnes server gives. A gateway's 502/503/504 means the server behind
    it is down (unreachable); anything else, that the URL is not an Agnes server."""
    status = response.status_code
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    try:
        asked = f" {response.request.method} {response.request.url.path}"
    except RuntimeError:  # a response made without a request
        asked = ""
    if status in (502, 503, 504):
        return ServerUnreachable(
            f"{base_url} answered{asked} with HTTP {status} ({kind}), not as Agnes does: a "
            "proxy in front of it could not reach the Agnes server.",
            hint="Check that the Agnes server behind it is running ('agnes whoami' shows the "
            "URL in use).",
        )
    instead = f" instead of {expected}" if expected else ""
    return NotAgnesServer(
        f"{base_url} is not an Agnes server: it answered{asked} with HTTP {status} "
        f"({kind}{instead}).",
        details={"status": status, "content_type": kind},
    )


class ArgumentNotText(AgnesError):
    code = "invalid_arguments"
    status = 400
    default_hint = (
        "Send it as UTF-8 text (a file saved in another encoding: save it as UTF-8, or "
        "convert it with iconv -t utf-8)."
    )


def _json_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with its ``json`` body encoded as httpx does (UTF-8). A string in it that
    is not Unicode (a lone surrogate: SQL piped in Latin-1, read with surrogateescape)
    cannot be encoded (a UnicodeEncodeError traceback) nor read by the server: it is
    refused here, naming the argument and the byte."""
    import json

    body = kwargs.pop("json")
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        content = text.encode("utf-8")
    except UnicodeEncodeError:
        name, value = _not_text(body) or ("request", text)
        found = not_unicode(value)
        at = found.index if found is not None else 0
        raise ArgumentNotText(
            f"The {name} given is not text at character {at + 1:,}: a character that is "
            f"not Unicode{found.byte if found is not None else ''}."
        ) from None
    headers = {"Content-Type": "application/json", **(kwargs.pop("headers", None) or {})}
    return {**kwargs, "content": content, "headers": headers}


def _not_text(value: Any, name: str = "request") -> tuple[str, str] | None:
    """The first string in ``value`` that UTF-8 cannot encode, with the key it is under."""
    if isinstance(value, str):
        return (name, value) if not_unicode(value) is not None else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = _not_text(item, str(key) if isinstance(key, str) else name)
        if found is not None:
            return found
    return None
