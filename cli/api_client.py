"""A small HTTP client for the server's REST API, used by the CLI."""

from __future__ import annotations

from typing import Any

import httpx

from cli.credentials import Credentials


class ApiError(Exception):
    """The server answered with an error: its status and ``{code, message, hint}``."""

    def __init__(self, status: int, code: str, message: str, hint: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint


class Unreachable(Exception):
    """The server could not be reached at all."""


class ApiClient:
    def __init__(self, credentials: Credentials, timeout: float = 30.0) -> None:
        headers = {"User-Agent": "agnes-cli"}
        if credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        self.base_url = credentials.server_url
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            reason = str(exc).rstrip(".") or type(exc).__name__
            raise Unreachable(
                f"Cannot reach the Agnes server at {self.base_url}: {reason}."
            ) from None
        if response.status_code >= 400:
            raise _error_of(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                response.status_code,
                "not_agnes",
                f"{self.base_url} answered {path} with something other than JSON.",
                "Check --server-url / AGNES_SERVER_URL: it should point at an Agnes server.",
            ) from None

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body or {})

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def close(self) -> None:
        self._http.close()


def _error_of(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(response.status_code, error["code"], error["message"], error.get("hint"))
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason_phrase
        return ApiError(response.status_code, f"http_{response.status_code}", text, None)
