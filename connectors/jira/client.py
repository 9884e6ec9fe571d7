"""Jira Cloud REST v3 over httpx: the few reads the connector needs.

- ``GET /rest/api/3/issue/{key}?expand=changelog,names`` — one issue, with ``fields.comment``
  (a page) and ``changelog`` (a page of histories);
- ``GET /rest/api/3/issue/{key}/comment?startAt=&maxResults=`` — the rest of the comments;
- ``GET /rest/api/3/issue/{key}/changelog?startAt=&maxResults=`` — the rest of the changelog;
- ``GET /rest/api/3/search/jql?jql=&fields=&maxResults=&nextPageToken=`` — the enhanced
  search, paged by ``nextPageToken`` until ``isLast``;
- ``GET /rest/api/3/myself`` — the account's time zone (JQL dates are read in it).

Basic auth with the account's email and the API token read from ``$token_env`` at each
request (never stored, logged or put in a message). 429 and 5xx are retried, honouring
``Retry-After`` (else ``X-RateLimit-Reset``, the other header Jira's rate limiting
sends); 401/403 are terminal and name the variable, never its value.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from agnes_sync.errors import SourceDataError, TerminalSyncError, TransientSyncError
from agnes_sync.http_deadline import answer_deadline
from agnes_sync.retry import asked_pause, pause_before_retry, retry_after
from connectors.jira.options import JiraOptions
from connectors.jira.rows import obj, valid_id, valid_key

logger = logging.getLogger("agnes.sync.jira")
PAGE = 100
STUCK_PAGES = 3  # search pages in a row bringing nothing new before paging stops
RETRIED = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchedIssue:
    issue: dict[str, Any]
    comments: list[dict[str, Any]]
    histories: list[dict[str, Any]]


def _backoff(status: int, attempt: int) -> float:
    """Seconds before the next try when Jira did not say: a 429 from 5 s up (Atlassian's
    guidance for rate limits), anything else from 0.25 s (a blip)."""
    if status == 429:
        return min(5.0 * 2.0 ** (attempt - 1), 60.0)
    return min(0.25 * 2.0 ** (attempt - 1), 10.0)


def rate_limit_reset(header: str | None) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (ISO 8601, ``yyyy-MM-ddTHH:mmZ``): Jira's rate
    limit documentation sends it with a 429, with or without ``Retry-After``."""
    if not header:
        return None
    try:
        when = datetime.fromisoformat(header.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return asked_pause(when.timestamp() - time.time())


def asked_wait(response: httpx.Response) -> float | None:
    """How long Jira asked us to wait: ``Retry-After``, else ``X-RateLimit-Reset``."""
    said = retry_after(response.headers.get("Retry-After"))  # a day at most
    return said if said is not None else rate_limit_reset(response.headers.get("X-RateLimit-Reset"))


class JiraClient:
    def __init__(
        self,
        options: JiraOptions,
        *,
        attempts: int = 5,
        max_wait_seconds: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.attempts = attempts
        self.max_wait_seconds = max_wait_seconds
        self.sleep = sleep
        self._http = httpx.Client(
            base_url=options.base_url,
            timeout=options.timeout_seconds,
            headers={"Accept": "application/json", "User-Agent": "agnes-jira-connector"},
            follow_redirects=True,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            event_hooks={"response": [answer_deadline(options.timeout_seconds)]},
        )

    def close(self) -> None:
        self._http.close()

    # --- transport ------------------------------------------------------------------

    def _auth(self) -> httpx.BasicAuth:
        token = os.environ.get(self.options.token_env, "")
        if not token:
            raise TerminalSyncError(
                f"${self.options.token_env} is not set: the jira source needs the API token "
                f"of {self.options.email} in it.",
                hint="Create a token at id.atlassian.com (Security > API tokens) and set the "
                "variable in the server's environment.",
            )
        return httpx.BasicAuth(self.options.email, token)

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """GET ``path`` with retries; returns any answer that is not retried (callers
        handle 404); raises on auth failures and on retries exhausted."""
        waited = 0.0
        hinted: float | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._http.get(path, params=params, auth=self._auth())
            except httpx.TooManyRedirects:
                raise TerminalSyncError(
                    f"Jira at {self.options.base_url} redirects GET {path} in a loop.",
                    hint="Check the 'url' option: it must be the Jira site itself, e.g. "
                    "https://example.atlassian.net (not a page behind a login).",
                ) from None
            except httpx.RequestError as exc:  # the network, or a body that does not decode
                problem = (
                    f"Jira at {self.options.base_url} could not be reached ({type(exc).__name__})"
                )
                wait = _backoff(0, attempt)
            else:
                if response.status_code not in RETRIED:
                    self._refused(response, path)
                    return response
                problem = f"Jira answered {response.status_code} to GET {path}"
                hinted = asked_wait(response)
                wait = pause_before_retry(hinted, _backoff(response.status_code, attempt))
            if attempt == self.attempts or waited + wait > self.max_wait_seconds:
                break
            logger.warning("%s; retrying in %.1fs (attempt %d)", problem, wait, attempt)
            self.sleep(wait)
            waited += wait
        if hinted is not None and waited + hinted > self.max_wait_seconds:
            # Jira's word: a call before then fails again and lengthens the wait. Nothing
            # (the sync's retries, the webhook queue) calls before it has passed.
            raise TransientSyncError(
                f"{problem}: Jira asked to wait {hinted:.0f} s before calling again.",
                hint="Jira is rate-limiting this account; the sync is tried again after "
                "the wait Jira asked for (or at the next scheduled sync).",
                details={"retry_after_seconds": math.ceil(hinted)},
            )
        raise TransientSyncError(
            f"{problem} after {attempt} attempt(s).",
            hint="Jira is rate-limiting or unavailable; the next sync (or webhook) retries.",
        )

    def _refused(self, response: httpx.Response, path: str) -> None:
        env, email = self.options.token_env, self.options.email
        if response.status_code == 401:
            raise TerminalSyncError(
                f"The token in ${env} was refused by {self.options.base_url} (401).",
                hint=f"Check that ${env} holds a current API token of {email}.",
            )
        if response.status_code == 403:
            raise TerminalSyncError(
                f"The token in ${env} was refused for GET {path} (403): {email} lacks access.",
                hint="Give the account 'Browse projects' on the projects the source keeps.",
            )
        if response.status_code == 400:
            raise TerminalSyncError(
                f"Jira refused GET {path} (400): {_messages(response)}",
                hint="Check the source's 'projects' option: every key must exist.",
            )

    def json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self.get(path, params)
        if response.status_code >= 300:
            raise TerminalSyncError(
                f"Jira answered {response.status_code} to GET {path}.",
                hint="Check the 'url' option: it must be the Jira site, e.g. "
                "https://jira.example.com.",
            )
        return _decoded(response, path)

    # --- reads ---------------------------------------------------------------------------

    def myself(self) -> dict[str, Any] | None:
        """The account (for its ``timeZone``); ``None`` if the site does not say."""
        try:
            response = self.get("/rest/api/3/myself")
        except TransientSyncError:
            return None
        if response.status_code != 200:
            return None
        found = _decoded(response, "/rest/api/3/myself")
        return found if isinstance(found, dict) else None

    def _issue(self, ref: str, params: dict[str, str]) -> dict[str, Any] | None:
        """``GET /rest/api/3/issue/{ref}``; ``None`` when Jira says it does not exist
        (deleted, or not visible to the account)."""
        if valid_key(ref) is None and valid_id(ref) is None:
            raise SourceDataError(f"{ref[:40]!r} is not a Jira issue key or id.")
        path = f"/rest/api/3/issue/{ref}"
        response = self.get(path, params)
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise TerminalSyncError(f"Jira answered {response.status_code} to GET {path}.")
        issue = _decoded(response, path)
        if not isinstance(issue, dict) or (
            valid_key(issue.get("key")) is None and valid_id(issue.get("id")) is None
        ):
            # Jira's errorMessages sent with 200, a proxy's JSON: not this issue's state
            # (read as one, the census took it for an issue in no project, moved away)
            raise TransientSyncError(
                f"Jira's answer to GET {path} is not an issue{_quoting(issue)}.",
                hint="A proxy in front of Jira may have answered; the sync (or webhook) "
                "tries again, and the issue keeps its last rows.",
            )
        return issue

    def issue(self, ref: str) -> FetchedIssue | None:
        """Issue ``ref`` (a key or a numeric id) with all its comments and histories;
        ``None`` when Jira says it does not exist (deleted, or not visible)."""
        issue = self._issue(ref, {"expand": "changelog,names"})
        if issue is None:
            return None
        key = valid_key(issue.get("key")) or ref
        fields = obj(issue.get("fields"))
        comments = self._comments(key, fields.get("comment"))
        histories = self._histories(key, issue.get("changelog"))
        return FetchedIssue(issue, comments, histories)

    def can_browse(self, project: str) -> bool:
        """Whether the account sees project ``project`` (``GET /rest/api/3/project/{key}``:
        404 when it does not exist or the account may not browse it)."""
        path = f"/rest/api/3/project/{project}"
        response = self.get(path, {})
        if response.status_code == 404:
            return False
        if response.status_code >= 300:
            raise TerminalSyncError(f"Jira answered {response.status_code} to GET {path}.")
        return True

    def project_of(self, ref: str) -> str | None:
        """The project key issue ``ref`` is in now, read with the fewest fields; ``None``
        when Jira says it does not exist (deleted, or no longer visible to the account)."""
        issue = self._issue(ref, {"fields": "project"})
        if issue is None:
            return None
        key = obj(obj(issue.get("fields")).get("project")).get("key")
        if not isinstance(key, str) or not key:
            raise TransientSyncError(
                f"Jira's answer to GET /rest/api/3/issue/{ref} is not an issue with its "
                "project (fields.project.key).",
                hint="The census tries again at the next sync; nothing is tombstoned.",
            )
        return key

    def _comments(self, key: str, embedded: object) -> list[dict[str, Any]]:
        first: list[dict[str, Any]] = []
        if isinstance(embedded, dict):
            first = [c for c in embedded.get("comments") or [] if isinstance(c, dict)]
            total = embedded.get("total")
            if isinstance(total, int) and total <= len(first):
                return first
        paged = self._paged(f"/rest/api/3/issue/{key}/comment", "comments")
        return first if paged is None else paged

    def _histories(self, key: str, embedded: object) -> list[dict[str, Any]]:
        if not isinstance(embedded, dict):
            return []
        first = [h for h in embedded.get("histories") or [] if isinstance(h, dict)]
        total = embedded.get("total")
        if not isinstance(total, int) or total <= len(first):
            return first
        paged = self._paged(f"/rest/api/3/issue/{key}/changelog", "values")
        return first if paged is None else paged

    def _paged(self, path: str, items: str) -> list[dict[str, Any]] | None:
        """Every item of an offset-paged list (``startAt``/``maxResults``/``total``), by
        ``id``; ``None`` if the list is not there (404: the issue went meanwhile)."""
        found: dict[str, dict[str, Any]] = {}
        start = 0
        while True:
            response = self.get(path, {"startAt": start, "maxResults": PAGE})
            if response.status_code == 404:
                return None
            if response.status_code >= 300:
                raise TerminalSyncError(f"Jira answered {response.status_code} to GET {path}.")
            page = _decoded(response, path)
            listed = _listed(page, path, items)
            fresh = {str(x.get("id")): x for x in listed if str(x.get("id")) not in found}
            found.update(fresh)
            start += len(listed)
            total = page.get("total")
            if listed and not fresh and isinstance(total, int) and len(found) < total:
                # startAt ignored (a proxy, an old server): what was read is a part of the
                # list, and an issue is never published with part of its comments
                raise TransientSyncError(
                    f"Jira answered GET {path} at startAt={start - len(listed)} with a page "
                    f"it had sent already: {len(found)} of {total} {items} read.",
                    hint="A proxy in front of Jira may drop the query string; the issue is "
                    "fetched again at the next sync (or webhook), and keeps its last rows.",
                )
            if not fresh or page.get("isLast") is True:  # nothing more to read
                return list(found.values())
            if isinstance(total, int) and start >= total:
                return list(found.values())

    def search(
        self, jql: str, fields: str, page_size: int = PAGE
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``GET /rest/api/3/search/jql`` results, following ``nextPageToken``."""
        token: str | None = None
        seen: set[str] = set()
        listed: set[str] = set()  # the issues sent so far
        idle = 0  # pages in a row that sent no issue not sent before
        while True:
            params: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": page_size}
            if token:
                params["nextPageToken"] = token
            page = self.json("/rest/api/3/search/jql", params)
            issues = _listed(page, "/rest/api/3/search/jql", "issues")
            fresh = {str(i.get("id") or i.get("key")) for i in issues} - listed
            listed |= fresh
            yield issues
            token = page.get("nextPageToken")
            if page.get("isLast") is True or not token:
                return
            if token in seen:
                raise SourceDataError("Jira's search repeated a nextPageToken; stopped paging.")
            seen.add(token)
            idle = 0 if fresh else idle + 1
            if idle >= STUCK_PAGES:
                # a cursor that does not move (fresh tokens, the same issues): paging on
                # would never end, fetching the same issues again at every page
                raise SourceDataError(
                    f"Jira's search sent {idle} pages in a row with no issue it had not sent "
                    f"already ({len(listed)} issues in all); stopped paging.",
                    hint="A proxy in front of Jira may cache or rewrite the search; the next "
                    "sync reads again from the same point.",
                )


def _decoded(response: httpx.Response, path: str) -> Any:
    """The answer's JSON. One that does not parse (cut off, or a proxy's page) is worth
    another try, as a network error is: the data itself was never read."""
    try:
        return response.json()
    except ValueError:
        raise TransientSyncError(f"Jira's answer to GET {path} is not JSON.") from None
    except RecursionError:  # a rich text nested hundreds deep: the same every time
        raise SourceDataError(
            f"Jira's answer to GET {path} nests arrays or objects too deeply to read."
        ) from None


def _listed(page: Any, path: str, items: str) -> list[dict[str, Any]]:
    """The ``items`` of a page. A page without that list (a ``200`` carrying Jira's
    ``errorMessages``, a proxy's JSON) is not an empty page: read as one, a search ended
    there and the sync moved its watermark past issues it never read, and an issue was
    published without its comments. Worth another try, as an answer that is not JSON is."""
    listed = page.get(items) if isinstance(page, dict) else None
    if not isinstance(listed, list):
        raise TransientSyncError(
            f"Jira answered GET {path} without its list of {items}{_quoting(page)}.",
            hint="A proxy in front of Jira may have answered; the sync is retried, and "
            "nothing is published from this answer.",
        )
    return [x for x in listed if isinstance(x, dict)]


def _messages(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no details"
    return _said(body)


def _quoting(body: Any) -> str:
    """``": <Jira's error texts>"`` to end a sentence with, or nothing when it has none."""
    said = _said(body)
    return f": {said}" if said != "no details" else ""


def _said(body: Any) -> str:
    """Jira's error texts in an answer (``errorMessages``, ``errors``)."""
    if isinstance(body, dict):
        said, fields = body.get("errorMessages"), body.get("errors")
        messages = [str(m) for m in said] if isinstance(said, list) else []
        messages += [f"{k}: {v}" for k, v in fields.items()] if isinstance(fields, dict) else []
        return "; ".join(messages)[:500] or "no details"
    return "no details"
