"""One exception type for everything Agnes refuses in a notebook: :class:`AgnesRefusal`.

A refusal of the rails (``QueryRefused``, with its ``next_step``), an error of the server
(``ServerError``: budget, grants, auth) or of the workspace (``AgnesError``) is raised as
an :class:`AgnesRefusal` carrying ``code``, ``message``, ``hint`` and ``next_step``. In
Jupyter it renders as a short box instead of a traceback through Agnes's internals.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError

from agnes_mcp.rails.refusals import invalid_arguments
from agnes_sync.errors import AgnesError


class AgnesRefusal(Exception):
    """Agnes said no (or could not answer): ``code`` is stable, ``hint`` and ``next_step``
    say what to do instead."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        hint: str | None = None,
        next_step: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.next_step = next_step
        self.details = details or {}

    def __str__(self) -> str:
        lines = [f"[{self.code}] {self.message}"]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        if self.next_step:
            lines.append(f"next step: {json.dumps(self.next_step, default=str)}")
        return "\n".join(lines)

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of a traceback."""
        first, *rest = str(self).splitlines()
        return [f"AgnesRefusal: {first}", *rest]

    def _repr_html_(self) -> str:
        parts = [
            f"<div class='agnes-refusal'><strong>Refused: {html.escape(self.code)}</strong>",
            f"<p>{html.escape(self.message)}</p>",
        ]
        if self.hint:
            parts.append(f"<p><em>Hint:</em> {html.escape(self.hint)}</p>")
        if self.next_step:
            step = html.escape(json.dumps(self.next_step, indent=2, default=str))
            parts.append(f"<p><em>Next step:</em></p><pre>{step}</pre>")
        parts.append("</div>")
        return "".join(parts)


def from_error(exc: AgnesError) -> AgnesRefusal:
    """The refusal an Agnes error stands for (a server's refusal keeps the server's code)."""
    details = dict(exc.details or {})
    step = getattr(exc, "next_step", None) or details.get("next_step")
    return AgnesRefusal(
        exc.code,
        exc.message,
        hint=exc.hint,
        next_step=step if isinstance(step, dict) else None,
        details=details,
    )


@contextmanager
def refusals(call: str = "arguments") -> Iterator[None]:
    """Raise Agnes's errors as :class:`AgnesRefusal` (the original chained as its cause);
    arguments that do not fit what ``call`` takes (pydantic's checks) as ``invalid_arguments``
    naming each problem, as the MCP tools answer them."""
    try:
        yield
    except AgnesRefusal:
        raise
    except AgnesError as exc:
        raise from_error(exc) from exc
    except ValidationError as exc:
        raise from_error(invalid_arguments(call, exc)) from None
