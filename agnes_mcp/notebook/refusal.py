"""One exception type for everything Agnes refuses in a notebook: :class:`AgnesRefusal`.

A refusal of the rails (``QueryRefused``, with its ``next_step``), an error of the server
(``ServerError``: budget, grants, auth) or of the workspace (``AgnesError``) is raised as
an :class:`AgnesRefusal` carrying ``code``, ``message``, ``hint`` and ``next_step``. In
Jupyter it renders as a short box instead of a traceback through Agnes's internals.
"""

from __future__ import annotations

import functools
import html
import inspect
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import ValidationError, validate_call

from agnes_mcp.rails.not_bool import numbers_refuse_bool
from agnes_mcp.rails.refusals import invalid_arguments
from agnes_sync.caller import interruptible
from agnes_sync.errors import AgnesError
from agnes_sync.printable import printable


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
        # "ws": the calls it names are the notebook API's on `ws`; the magics set their
        # workspace variable (agnes_ws) and then name the magics where there is one.
        self.workspace_var = "ws"
        self.code = code
        self.message = message
        self.hint = hint
        self.next_step = next_step
        self.details = details or {}

    def __str__(self) -> str:
        lines = [f"[{self.code}] {self.message}"]
        if self.hint:
            lines.append(f"hint: {notebook_words(self.hint, self.workspace_var)}")
        calls = next_calls(self.next_step, self.workspace_var)
        lines.extend(f"{'next step' if i == 0 else '       or'}: {c}" for i, c in enumerate(calls))
        return "\n".join(lines)

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of a traceback (on a terminal too: a value
        the message quotes has its control characters shown escaped)."""
        first, *rest = printable(str(self)).splitlines()
        return [f"AgnesRefusal: {first}", *rest]

    def _repr_html_(self) -> str:
        parts = [
            f"<div class='agnes-refusal'><strong>Refused: {html.escape(self.code)}</strong>",
            f"<p>{html.escape(self.message)}</p>",
        ]
        if self.hint:
            hint = notebook_words(self.hint, self.workspace_var)
            parts.append(f"<p><em>Hint:</em> {html.escape(hint)}</p>")
        calls = next_calls(self.next_step, self.workspace_var)
        if calls:
            step = html.escape("\n# or\n".join(calls))
            parts.append(f"<p><em>Next step:</em></p><pre>{step}</pre>")
        parts.append("</div>")
        return "".join(parts)


# The notebook API's call for each MCP tool a refusal names (agnes_mcp.tool_words); the
# hint and next step a refusal carries (``.hint``, ``.next_step``) stay the tools' words.
NOTEBOOK_FOR_TOOL = {
    "catalog": "ws.catalog()",
    "schema": "ws.schema()",
    "describe": "ws.describe()",
    "query": "ws.query()",
    "query_remote": "ws.query_remote()",
    "snapshot_create": "ws.snapshot()",
    "snapshot_estimate": "ws.snapshot_estimate()",
    "snapshot_list": "ws.snapshots()",
    "snapshot_drop": "ws.snapshot_drop()",
    "metrics_list": "ws.metrics()",
    "metric_show": "ws.metric_show()",
    "metric_query": "ws.metric()",
    "whoami": "ws.whoami()",
}
_RENAMED = {"id": "metric_id"}  # a tool's argument that the method names otherwise
_NOT_PASSED = {"cursor"}  # a listing's page: the notebook's listings are never cut


# The magic for each tool that has one, named in a refusal of a magic (whose notebook may
# hold no `ws`: the magics' workspace is agnes_ws); the others are agnes_ws's calls.
MAGIC_FOR_TOOL = {
    "catalog": "%agnes catalog",
    "schema": "%agnes schema",
    "describe": "%agnes describe",
    "query": "%%agnes_sql",
    "query_remote": "%%agnes_sql --remote",
    "snapshot_list": "%agnes snapshots",
    "metrics_list": "%agnes metrics",
    "whoami": "%agnes whoami",
}


def notebook_words(text: str, workspace_var: str = "ws") -> str:
    """``text`` with each MCP tool it names given as the notebook call instead (on
    ``workspace_var``; for the magics' own workspace, the magic where there is one)."""
    from agnes_mcp.tool_words import spoken

    return spoken(text, _words_for(workspace_var))


def _words_for(workspace_var: str) -> dict[str, str]:
    if workspace_var == "ws":
        return NOTEBOOK_FOR_TOOL
    calls = {tool: f"{workspace_var}.{call[3:]}" for tool, call in NOTEBOOK_FOR_TOOL.items()}
    return {**calls, **MAGIC_FOR_TOOL}


def next_calls(step: dict[str, Any] | None, workspace_var: str = "ws") -> list[str]:
    """The next step (one, or its options) as notebook API calls to run (on
    ``workspace_var``), or as the command to run in a terminal where the notebook API has
    none."""
    if not step:
        return []
    options = step.get("options")
    steps = options if isinstance(options, list) else [step]
    return [said for one in steps if isinstance(one, dict) and (said := _call(one, workspace_var))]


def _call(step: dict[str, Any], workspace_var: str = "ws") -> str | None:
    from agnes_mcp.session_export.code_text import literal

    tool, arguments, cli = step.get("tool"), step.get("arguments") or {}, step.get("cli")
    if tool in NOTEBOOK_FOR_TOOL and isinstance(arguments, dict):
        method = NOTEBOOK_FOR_TOOL[str(tool)].removeprefix("ws.").removesuffix("()")
        given = {_RENAMED.get(k, k): v for k, v in arguments.items() if k not in _NOT_PASSED}
        if "ttl_hours" in given:
            hours = given.pop("ttl_hours")
            given["ttl_seconds"] = round(hours * 3600) if isinstance(hours, (int, float)) else None
        said = ", ".join(f"{k}={literal(v)}" for k, v in given.items() if v is not None)
        return f"{workspace_var}.{method}({said})"
    if cli == "agnes pull":
        return f"{workspace_var}.pull()"
    return f"{cli}  (in a terminal)" if isinstance(cli, str) and cli else None


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
    naming each problem, as the MCP tools answer them. The stop button seen by DuckDB
    working on this thread (``RuntimeError: Query interrupted``) is a ``KeyboardInterrupt``,
    as anywhere else."""
    try:
        yield
    except AgnesRefusal:
        raise
    except AgnesError as exc:
        raise from_error(exc) from exc
    except ValidationError as exc:
        raise from_error(invalid_arguments(call, exc)) from None
    except RuntimeError as exc:
        from agnes_mcp.rails.sandbox import interrupted_by_user

        if interrupted_by_user(exc):
            raise KeyboardInterrupt from None
        raise


F = TypeVar("F", bound=Callable[..., Any])


def checked(call: str) -> Callable[[F], F]:
    """A Workspace method whose arguments are checked against its annotations first, as
    the MCP tools check theirs: a value of the wrong type (``ws.query(123)``,
    ``limit="5"``, ``dimensions="channel"``) is refused as ``invalid_arguments`` naming
    it, not a TypeError or IndexError from deep inside (or a string read letter by letter).
    The check is built at the first call (the return types are not importable here).

    The call runs on a thread of its own while the kernel's thread waits for it
    (:func:`~agnes_sync.caller.interruptible`): the stop button lands in that wait, never
    half-way through the workspace's own state (a sandbox being opened or replaced, a
    cache being filled), and stops the call's queries and server requests; the next call
    finds everything as it was."""

    def decorate(method: F) -> F:
        signature = inspect.signature(method)
        checker: Callable[..., Any] | None = None

        def check(**kwargs: Any) -> dict[str, Any]:
            return kwargs

        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal checker
            if checker is None:
                check.__signature__ = signature.replace(  # type: ignore[attr-defined]
                    parameters=list(signature.parameters.values())[1:],
                    return_annotation=inspect.Signature.empty,
                )
                check.__annotations__ = {
                    k: v for k, v in method.__annotations__.items() if k not in ("self", "return")
                }
                check.__module__ = method.__module__
                # a number argument refuses a bool (True is an int: limit=True was 1 row)
                check.__annotations__ = {
                    k: numbers_refuse_bool(v)
                    for k, v in typing.get_type_hints(check, method.__globals__).items()
                }
                checker = validate_call(config={"arbitrary_types_allowed": True})(check)
            # by name, so that a problem names the argument, not its position
            named = signature.bind(self, *args, **kwargs).arguments
            named.pop(next(iter(signature.parameters)))
            with refusals(call):
                arguments = checker(**named)
                return interruptible(lambda: method(self, **arguments))

        return run  # type: ignore[return-value]

    return decorate
