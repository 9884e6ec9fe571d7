"""A local HTTP server that speaks the Jira Cloud REST v3 shapes the jira connector reads.

Built from Atlassian's REST v3 reference and webhook documentation:

- ``GET /rest/api/3/issue/{issueIdOrKey}?expand=changelog``: ``{id, key, self, fields,
  changelog}``; ``fields`` has ``summary``, ``description`` (Atlassian Document Format),
  ``status{name, statusCategory}``, ``issuetype{name}``, ``project{key, name}``,
  ``created``/``updated`` (``2026-01-15T10:30:00.000+0000``), ``assignee``/``reporter``
  ``{accountId, displayName}``, ``priority{name}``, ``labels``, ``issuelinks[{id, type{name,
  inward, outward}, inwardIssue|outwardIssue}]`` and ``comment{comments, maxResults, total,
  startAt}`` (only the first ``embedded_comments``); ``changelog{startAt, maxResults, total,
  histories[{id, author, created, items[{field, fieldtype, fieldId, from, fromString, to,
  toString}]}]}``. A moved issue answers under its old key too.
- ``GET /rest/api/3/issue/{key}/comment?startAt=&maxResults=``: ``{startAt, maxResults,
  total, comments}``, ``maxResults`` capped at ``comment_page_cap``.
- ``GET /rest/api/3/issue/{key}/changelog?startAt=&maxResults=``: ``{startAt, maxResults,
  total, isLast, values}``.
- ``GET /rest/api/3/search/jql?jql=&fields=&maxResults=&nextPageToken=``: ``{issues,
  nextPageToken, isLast}`` (the enhanced search). The JQL understood: ``project in (A, B)``,
  ``project = A``, ``updated >= "yyyy-MM-dd HH:mm"`` and ``created >= ...`` joined by AND,
  with dates read in the account's time zone, as Jira does; anything else is a 400, and a
  query with no restriction is refused as unbounded.
- ``GET /rest/api/3/myself``: ``{accountId, emailAddress, displayName, timeZone}``.

Every call needs ``Authorization: Basic base64(email:token)`` (else 401). ``fail_next``
makes the next calls answer 429 with ``Retry-After`` (or any status, a redirect's
``Location``, other headers such as the rate limit's ``X-RateLimit-Reset``,
``yyyy-MM-ddTHH:mmZ``, which may come without ``Retry-After``). ``webhook_body``
builds the JSON Jira posts for an event; ``signed`` the headers Jira sends with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.threaded_server import ThreadedServer

EMAIL = "robot@example.com"
TOKEN = "jira-test-token-1234567890"
API = "/rest/api/3"
LINK_TYPES = {"Blocks": ("is blocked by", "blocks"), "Relates": ("relates to", "relates to")}


def jira_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}+0000"
    )


def adf(text: str) -> dict[str, Any]:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def user(name: str) -> dict[str, Any]:
    return {"accountId": f"acc-{name}", "displayName": name.title(), "active": True}


@dataclass
class Failure:
    status: int
    retry_after: str | None
    path_prefix: str
    raw_body: str | None = None  # sent as is (a body cut off, a proxy's page)
    location: str | None = None  # a redirect's Location
    headers: dict[str, str] | None = None  # e.g. X-RateLimit-Reset


@dataclass
class FakeJira:
    base_url: str = "http://jira.invalid"
    time_zone: str = "America/Los_Angeles"
    embedded_comments: int = 5
    comment_page_cap: int = 100
    start_at_ignored: bool = False  # True: comment pages always start at 0 (a bad proxy)
    embedded_histories: int = 100
    search_page_cap: int = 50
    # A search cursor that never moves: every page is the first one again, with a fresh
    # nextPageToken (a proxy caching page one, a broken cursor).
    search_stuck: bool = False
    myself_available: bool = True  # False: /myself answers 404 (no time zone to read)
    # Projects the account can no longer browse: Jira answers as if they did not exist
    # (search leaves their issues out, an issue or the project itself is a 404).
    hidden_projects: set[str] = field(default_factory=set)
    # Every field's name as the site calls it, sent with an issue asked for expand=names
    # (Jira's map covers every field of the issue, custom ones included).
    field_names: dict[str, str] = field(
        default_factory=lambda: {
            "summary": "Summary",
            "status": "Status",
            "customfield_10010": "Team",
            "customfield_10016": "Story point estimate",
            "customfield_10020": "Sprint",
        }
    )
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id
    aliases: dict[str, str] = field(default_factory=dict)  # key (current or old) -> id
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    clock: datetime = field(default_factory=lambda: datetime.now(UTC))
    _ids: itertools.count = field(default_factory=lambda: itertools.count(10001))
    _numbers: dict[str, itertools.count] = field(default_factory=dict)

    # --- the data ----------------------------------------------------------------------

    def tick(self) -> datetime:
        """Jira's clock: now, and every change at least a millisecond after the last."""
        self.clock = max(datetime.now(UTC), self.clock + timedelta(milliseconds=1))
        return self.clock

    def create_issue(
        self,
        project: str = "PROJ",
        summary: str = "An issue",
        *,
        created: datetime | None = None,
        issue_id: str | None = None,
        **fields: Any,
    ) -> str:
        with self.lock:
            now = self.tick()
            number = next(self._numbers.setdefault(project, itertools.count(1)))
            issue_id, key = issue_id or str(next(self._ids)), f"{project}-{number}"
            self.issues[issue_id] = {
                "id": issue_id,
                "key": key,
                "self": f"{self.base_url}{API}/issue/{issue_id}",
                "fields": {
                    "summary": summary,
                    "description": adf(f"Description of {summary}"),
                    "status": {
                        "name": "To Do",
                        "statusCategory": {"key": "new", "name": "To Do"},
                    },
                    "issuetype": {"name": "Task"},
                    "project": {"key": project, "name": f"Project {project}"},
                    "created": jira_time(created or now),
                    "updated": jira_time(now),
                    "assignee": user("alice"),
                    "reporter": user("bob"),
                    "priority": {"name": "Medium"},
                    "labels": ["backend"],
                    "issuelinks": [],
                    "resolution": None,
                    "resolutiondate": None,
                    "duedate": None,
                    "customfield_10010": None,
                    **fields,
                },
            }
            self.aliases[key] = issue_id
            self.comments[issue_id] = []
            self.histories[issue_id] = []
            return key

    def issue_by(self, ref: str) -> dict[str, Any] | None:
        with self.lock:
            issue_id = ref if ref in self.issues else self.aliases.get(ref)
            found = self.issues.get(issue_id) if issue_id else None
            return None if found is None or self._hidden(found) else found

    def _hidden(self, issue: dict[str, Any]) -> bool:
        return bool(issue["fields"]["project"]["key"] in self.hidden_projects)

    def projects(self) -> set[str]:
        with self.lock:
            return {i["fields"]["project"]["key"] for i in self.issues.values()}

    def update_issue(self, key: str, **changes: Any) -> None:
        """Change fields (``status`` as a name) and record a changelog history."""
        with self.lock:
            issue = self._get(key)
            fields = issue["fields"]
            items = []
            for name, value in changes.items():
                if name == "status":
                    old = fields["status"]["name"]
                    fields["status"] = {
                        "name": value,
                        "statusCategory": {"key": "done" if value == "Done" else "indeterminate"},
                    }
                    items.append(_item("status", old, value))
                else:
                    items.append(_item(name, fields.get(name), value))
                    fields[name] = value
            now = self.tick()
            fields["updated"] = jira_time(now)
            history_id = str(len(self.histories[issue["id"]]) + 1 + 50000 * int(issue["id"]))
            self.histories[issue["id"]].append(
                {
                    "id": history_id,
                    "author": user("alice"),
                    "created": jira_time(now),
                    "items": items,
                }
            )

    def add_comment(
        self,
        key: str,
        text: str,
        *,
        visibility: dict[str, str] | None = None,
        jsd_public: bool | None = None,
    ) -> str:
        """A comment; ``visibility`` restricts it to a role or group
        (``{"type": "role", "value": "Developers"}``), ``jsd_public=False`` makes it a
        service desk's internal note (Jira's ``jsdPublic``)."""
        with self.lock:
            issue = self._get(key)
            now = self.tick()
            listed = self.comments[issue["id"]]
            comment_id = str(90000 + sum(len(c) for c in self.comments.values()))
            listed.append(
                {
                    "id": comment_id,
                    "self": f"{self.base_url}{API}/issue/{issue['id']}/comment/{comment_id}",
                    "author": user("carol"),
                    "body": adf(text),
                    "updateAuthor": user("carol"),
                    "created": jira_time(now),
                    "updated": jira_time(now),
                    **({"visibility": visibility} if visibility else {}),
                    **({"jsdPublic": jsd_public} if jsd_public is not None else {}),
                }
            )
            issue["fields"]["updated"] = jira_time(now)
            return comment_id

    def delete_comment(self, key: str, comment_id: str) -> None:
        with self.lock:
            issue = self._get(key)
            listed = self.comments[issue["id"]]
            listed[:] = [c for c in listed if c["id"] != comment_id]
            issue["fields"]["updated"] = jira_time(self.tick())

    def link(self, outward_key: str, inward_key: str, kind: str = "Blocks") -> None:
        """``outward_key`` <outward> ``inward_key`` (e.g. A blocks B)."""
        with self.lock:
            a, b = self._get(outward_key), self._get(inward_key)
            inward, outward = LINK_TYPES[kind]
            link_id = str(70000 + len(a["fields"]["issuelinks"]) + len(b["fields"]["issuelinks"]))
            link_type = {"id": "1", "name": kind, "inward": inward, "outward": outward}
            a["fields"]["issuelinks"].append(
                {"id": link_id, "type": link_type, "outwardIssue": _ref(b)}
            )
            b["fields"]["issuelinks"].append(
                {"id": link_id, "type": link_type, "inwardIssue": _ref(a)}
            )
            now = jira_time(self.tick())
            a["fields"]["updated"] = b["fields"]["updated"] = now

    def move_issue(self, key: str, project: str) -> str:
        """Move to another project: a new key; the old one still answers."""
        with self.lock:
            issue = self._get(key)
            number = next(self._numbers.setdefault(project, itertools.count(1)))
            issue["key"] = f"{project}-{number}"
            issue["fields"]["project"] = {"key": project, "name": f"Project {project}"}
            issue["fields"]["updated"] = jira_time(self.tick())
            self.aliases[issue["key"]] = issue["id"]
            return str(issue["key"])

    def archive_issue(self, key: str) -> None:
        """Archived (Jira Cloud Premium): no longer in search results, still readable."""
        with self.lock:
            self._get(key)["archived"] = True

    def delete_issue(self, key: str) -> dict[str, Any]:
        with self.lock:
            issue = self._get(key)
            del self.issues[issue["id"]]
            return issue

    def _get(self, ref: str) -> dict[str, Any]:
        found = self.issue_by(ref)
        if found is None:
            raise KeyError(ref)
        return found

    def fail_next(
        self,
        count: int = 1,
        status: int = 429,
        retry_after: str | None = "1",
        path_prefix: str = "",
        raw_body: str | None = None,
        location: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        with self.lock:
            self.failures.extend(
                Failure(status, retry_after, path_prefix, raw_body, location, headers)
                for _ in range(count)
            )

    def calls(self, path_prefix: str) -> list[tuple[str, str, dict[str, str]]]:
        with self.lock:
            return [r for r in self.requests if r[1].startswith(path_prefix)]

    # --- webhooks ----------------------------------------------------------------------

    def webhook_body(self, event: str, key: str, *, issue: dict[str, Any] | None = None) -> bytes:
        """The JSON Jira posts for ``event`` about issue ``key``."""
        with self.lock:
            found = issue or self._get(key)
            payload: dict[str, Any] = {
                "timestamp": int(self.clock.timestamp() * 1000),
                "webhookEvent": event,
                "user": user("alice"),
                "matchedWebhookIds": [1],
            }
            shallow = {
                "id": found["id"],
                "key": found["key"],
                "self": found["self"],
                "fields": {k: v for k, v in found["fields"].items() if k != "comment"},
            }
            if event.startswith("jira:issue"):
                payload["issue_event_type_name"] = event.split("_", 1)[1]
                payload["issue"] = shallow
            elif event.startswith("comment_"):
                listed = self.comments.get(found["id"]) or [{"id": "0", "body": adf("")}]
                payload["issue"] = {"id": found["id"], "key": found["key"], "self": found["self"]}
                payload["comment"] = listed[-1]
            elif event.startswith("worklog_"):
                payload["worklog"] = {
                    "id": "30001",
                    "issueId": found["id"],
                    "author": user("alice"),
                    "timeSpent": "1h",
                    "timeSpentSeconds": 3600,
                }
            return json.dumps(payload).encode()

    # --- the HTTP side -------------------------------------------------------------------

    def failure_for(self, path: str) -> Failure | None:
        with self.lock:
            for index, failure in enumerate(self.failures):
                if path.startswith(failure.path_prefix):
                    return self.failures.pop(index)
        return None

    def issue_json(self, issue: dict[str, Any], expand: str) -> dict[str, Any]:
        listed = self.comments.get(issue["id"], [])
        shown = listed[: self.embedded_comments]
        body = json.loads(json.dumps(issue))
        body["fields"]["comment"] = {
            "comments": shown,
            "self": f"{issue['self']}/comment",
            "maxResults": len(shown),
            "total": len(listed),
            "startAt": 0,
        }
        if "names" in expand.split(","):
            body["names"] = {
                k: self.field_names.get(k, k.replace("_", " ").title()) for k in body["fields"]
            }
        if "changelog" in expand.split(","):
            histories = self.histories.get(issue["id"], [])
            first = histories[: self.embedded_histories]
            body["changelog"] = {
                "startAt": 0,
                "maxResults": len(first),
                "total": len(histories),
                "histories": first,
            }
        return body


def signed(body: bytes, secret: str, delivery_id: str | None = None) -> dict[str, str]:
    """The headers of a Jira webhook delivery of ``body``."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Atlassian Webhook HTTP Client",
        "X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
    if delivery_id is not None:
        headers["X-Atlassian-Webhook-Identifier"] = delivery_id
    return headers


def _item(field_name: str, old: object, new: object) -> dict[str, Any]:
    return {
        "field": field_name,
        "fieldtype": "jira",
        "fieldId": field_name,
        "from": None,
        "fromString": None if old is None else str(old),
        "to": None,
        "toString": None if new is None else str(new),
    }


def _ref(issue: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": issue["id"],
        "key": issue["key"],
        "self": issue["self"],
        "fields": {"summary": issue["fields"]["summary"], "status": issue["fields"]["status"]},
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"errorMessages": [message], "errors": {}}, status_code=status)


# Some of JQL's reserved words (support.atlassian.com, "JQL reserved words"): bare, they are
# a syntax error, so a project key that is one must be quoted.
_RESERVED = frozenset(
    {"AND", "AS", "BY", "DATE", "DO", "IF", "IN", "INT", "IS", "NOT", "OR", "SET", "USER", "VIEW"}
)
_CLAUSE_PROJECT_IN = re.compile(r"^project\s+in\s*\(([^)]*)\)$", re.I)
_CLAUSE_PROJECT_EQ = re.compile(r"^project\s*=\s*\"?([A-Z][A-Z0-9]*)\"?$", re.I)
_CLAUSE_DATE = re.compile(
    r'^(updated|created)\s*>=\s*"(\d{4})[-/](\d{2})[-/](\d{2})(?: (\d{2}):(\d{2}))?"$', re.I
)


def _matcher(jql: str, zone: str) -> Any:
    """A predicate over issues for the JQL the connector sends (ValueError otherwise)."""
    text = re.split(r"\s+order\s+by\s+", jql.strip(), flags=re.I)[0].strip()
    if not text:
        raise ValueError(
            "Unbounded JQL queries are not allowed here. Please add a search restriction."
        )
    tests = []
    for clause in re.split(r"\s+AND\s+", text, flags=re.I):
        clause = clause.strip()
        if found := _CLAUSE_PROJECT_IN.match(clause):
            for bare in (k.strip() for k in found[1].split(",")):
                if bare.upper() in _RESERVED:
                    raise ValueError(
                        f"Error in the JQL Query: '{bare.lower()}' is a reserved JQL word. You "
                        "must surround it in quotation marks to use it in a query."
                    )
            keys = {k.strip().strip('"') for k in found[1].split(",")}
            tests.append(lambda i, keys=keys: i["fields"]["project"]["key"] in keys)
        elif found := _CLAUSE_PROJECT_EQ.match(clause):
            tests.append(lambda i, key=found[1]: i["fields"]["project"]["key"] == key)
        elif found := _CLAUSE_DATE.match(clause):
            column = found[1].lower()
            year, month, day = int(found[2]), int(found[3]), int(found[4])
            hour, minute = int(found[5] or 0), int(found[6] or 0)
            since = datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone))
            tests.append(
                lambda i, column=column, since=since: (
                    datetime.fromisoformat(i["fields"][column]) >= since
                )
            )
        else:
            raise ValueError(f"Error in the JQL Query: the clause '{clause}' is not understood.")
    return lambda issue: all(test(issue) for test in tests)


def create_app(fake: FakeJira, email: str = EMAIL, token: str = TOKEN) -> Starlette:
    expected = "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()

    def guarded(handler: Any) -> Any:
        async def wrapped(request: Request) -> JSONResponse:
            with fake.lock:
                fake.requests.append((request.method, request.url.path, dict(request.query_params)))
            if request.headers.get("authorization") != expected:
                return _error(401, "Client must be authenticated to access this resource.")
            failure = fake.failure_for(request.url.path)
            if failure is not None:
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                if failure.location:
                    headers["Location"] = failure.location
                headers.update(failure.headers or {})
                if failure.raw_body is not None:
                    return Response(
                        failure.raw_body,
                        status_code=failure.status,
                        headers=headers,
                        media_type="application/json",
                    )
                return JSONResponse(
                    {"errorMessages": ["Rate limit exceeded."]},
                    status_code=failure.status,
                    headers=headers,
                )
            with fake.lock:
                return handler(request)

        return wrapped

    def myself(request: Request) -> JSONResponse:
        if not fake.myself_available:
            return _error(404, "Not found.")
        return JSONResponse(
            {
                "accountId": "acc-robot",
                "emailAddress": email,
                "displayName": "Robot",
                "timeZone": fake.time_zone,
                "active": True,
            }
        )

    def issue(request: Request) -> JSONResponse:
        found = fake.issue_by(request.path_params["ref"])
        if found is None:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        return JSONResponse(fake.issue_json(found, request.query_params.get("expand", "")))

    def page_args(request: Request, cap: int) -> tuple[int, int]:
        start = int(request.query_params.get("startAt", "0"))
        wanted = int(request.query_params.get("maxResults", str(cap)))
        return start, max(1, min(wanted, cap))

    def comments(request: Request) -> JSONResponse:
        found = fake.issue_by(request.path_params["ref"])
        if found is None:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        start, size = page_args(request, fake.comment_page_cap)
        if fake.start_at_ignored:
            start = 0
        listed = fake.comments[found["id"]]
        return JSONResponse(
            {
                "startAt": start,
                "maxResults": size,
                "total": len(listed),
                "comments": listed[start : start + size],
            }
        )

    def changelog(request: Request) -> JSONResponse:
        found = fake.issue_by(request.path_params["ref"])
        if found is None:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        start, size = page_args(request, 100)
        listed = fake.histories[found["id"]]
        return JSONResponse(
            {
                "startAt": start,
                "maxResults": size,
                "total": len(listed),
                "isLast": start + size >= len(listed),
                "values": listed[start : start + size],
            }
        )

    def project(request: Request) -> JSONResponse:
        """GET /rest/api/3/project/{projectIdOrKey}: a project the account can browse;
        404 for one that does not exist or that it may not see (Jira does not say which)."""
        key = request.path_params["key"]
        if key not in fake.projects() or key in fake.hidden_projects:
            return _error(404, "No project could be found with key '" + key + "'.")
        return JSONResponse({"id": str(10000 + len(key)), "key": key, "name": f"Project {key}"})

    def search(request: Request) -> JSONResponse:
        params = request.query_params
        try:
            matches = _matcher(params.get("jql", ""), fake.time_zone)
        except ValueError as exc:
            return _error(400, str(exc))
        wanted = [f for f in params.get("fields", "id").split(",") if f and f != "id"]
        size = max(1, min(int(params.get("maxResults", "50")), fake.search_page_cap))
        token = params.get("nextPageToken")
        start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
        if fake.search_stuck:
            start = 0
        found = [
            i
            for i in sorted(fake.issues.values(), key=lambda i: int(i["id"]))
            if matches(i) and not i.get("archived") and not fake._hidden(i)
        ]
        page = found[start : start + size]
        body: dict[str, Any] = {
            "issues": [
                {
                    "id": i["id"],
                    "key": i["key"],
                    "self": i["self"],
                    "fields": {f: i["fields"].get(f) for f in wanted},
                }
                for i in page
            ],
            "isLast": start + size >= len(found),
        }
        if not body["isLast"]:
            following = start + size + (len(fake.requests) if fake.search_stuck else 0)
            body["nextPageToken"] = base64.urlsafe_b64encode(str(following).encode()).decode()
        return JSONResponse(body)

    return Starlette(
        routes=[
            Route(f"{API}/myself", guarded(myself), methods=["GET"]),
            Route(f"{API}/project/{{key}}", guarded(project), methods=["GET"]),
            Route(f"{API}/search/jql", guarded(search), methods=["GET"]),
            Route(f"{API}/issue/{{ref}}", guarded(issue), methods=["GET"]),
            Route(f"{API}/issue/{{ref}}/comment", guarded(comments), methods=["GET"]),
            Route(f"{API}/issue/{{ref}}/changelog", guarded(changelog), methods=["GET"]),
        ]
    )


class FakeJiraServer(ThreadedServer):
    """The fake on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, **settings: Any) -> None:
        self.fake = FakeJira(**settings)
        super().__init__(create_app(self.fake))
        self.fake.base_url = self.url

    def options(self, **extra: Any) -> dict[str, Any]:
        """Source options pointing at this fake (the token in $JIRA_TEST_TOKEN)."""
        return {"url": self.url, "email": EMAIL, "token_env": "JIRA_TEST_TOKEN", **extra}
