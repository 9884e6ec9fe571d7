"""The one root of every error Agnes raises on purpose, and the sync engine's own errors.

:class:`AgnesError` lives here, in the lowest layer, so that the engine, the connectors
and the server share one hierarchy. Each error carries a stable ``code`` (clients
branch on it), an HTTP ``status`` and a message with a ``hint`` saying what to do next.

Sync failures are tagged: :class:`TransientSyncError` is retried with backoff,
:class:`TerminalSyncError` is reported at once.
"""

from __future__ import annotations

from typing import Any


class AgnesError(Exception):
    """Base class: a refusal or failure Agnes can explain to its caller."""

    code: str = "agnes_error"
    status: int = 500
    default_hint: str | None = None

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` object of the JSON error shape. A message or hint that quotes the
        caller's input (a table name, a value) is cut at ``MAX_SAID`` characters: a 4 MB
        name must not come back as a 15 MB error."""
        body: dict[str, Any] = {
            "code": self.code,
            "message": _cut(self.message),
            "hint": None if self.hint is None else _cut(self.hint),
        }
        if self.details:
            body["details"] = self.details
        return body


MAX_SAID = 2_000


def _cut(text: str) -> str:
    if len(text) <= MAX_SAID:
        return text
    return text[:MAX_SAID] + f"…(+{len(text) - MAX_SAID:,} characters)"


# --- the sync engine ------------------------------------------------------------------


class SyncError(AgnesError):
    """A table could not be synced."""

    code = "sync_failed"
    status = 502
    transient = False

    @property
    def retry_after_seconds(self) -> float | None:
        """How long the source asked us to wait before calling it again (its
        ``Retry-After``), when it said so: nothing retries before that."""
        value = self.details.get("retry_after_seconds")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
        return None


class TransientSyncError(SyncError):
    """Worth retrying: a timeout, a lock held elsewhere, a source briefly unavailable."""

    code = "sync_transient_failure"
    transient = True


class TerminalSyncError(SyncError):
    """Retrying will not help: bad data, a missing file, a wrong option."""

    code = "sync_terminal_failure"


class SourceDataError(TerminalSyncError):
    """The source's data cannot be read as configured (e.g. a malformed CSV row)."""

    code = "source_data_invalid"
    status = 422


class StorageUnwritable(TerminalSyncError):
    """The data dir's disk refused a write: full, read-only, over a quota or a file-size
    limit. Not retried in place (it does not clear in seconds); the next sync tries again."""

    code = "storage_unwritable"
    status = 507


class SourceTableNotFound(TerminalSyncError):
    code = "source_table_not_found"
    status = 404


class ConnectorNotFound(AgnesError):
    code = "connector_not_found"
    status = 422


class SourceNotConfigured(AgnesError):
    code = "source_not_configured"
    status = 422


class ConnectorCapabilityMissing(AgnesError):
    code = "connector_capability_missing"
    status = 422


class InvalidTableSpec(AgnesError):
    """A registration does not fit its source (missing column, wrong strategy, ...)."""

    code = "invalid_table_spec"
    status = 422


class ExtractInvalid(AgnesError):
    """An extract folder breaks the extract contract; ``details['problems']`` lists how."""

    code = "extract_invalid"
    status = 500


class InvalidSchedule(AgnesError):
    code = "invalid_schedule"
    status = 422
