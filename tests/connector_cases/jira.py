"""The jira connector as a conformance case: each record is an issue of project PROJ in the
fake Jira (``tests/fake_jira.py``), published in ``jira_issues``.

A record's ``id`` is the issue's id, ``updated_at`` its resolution date (``resolved``; the
issue's own ``updated`` is Jira's change marker, set to now by every change), ``amount``
its summary (as text) and ``country`` its status. A record leaving the source is an issue
deleted in Jira: the sync's key census moves it out of ``jira_issues`` (census at every
sync, no overlap). Failures: Jira answering 503 (transient) or refusing the token with
401 (terminal). The published schema is Jira's, fixed: no discovery typing, no drift.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from tests.connector_cases import Record
from tests.fake_jira import TOKEN, FakeJira, FakeJiraServer, jira_time

PROJECT = "PROJ"


class JiraSource:
    def __init__(self, server: FakeJiraServer) -> None:
        self.server = server
        self.fake: FakeJira = server.fake

    def options(self) -> dict[str, Any]:
        return self.server.options(projects=[PROJECT], census_hours=0, overlap_minutes=0)

    def location(self) -> dict[str, Any]:
        return {"source_table": "issues"}

    def put(
        self, records: Sequence[Record], *, add: Sequence[str] = (), drop: Sequence[str] = ()
    ) -> None:
        assert not add and not drop, "Jira's schema is fixed"
        wanted = {str(r[0]) for r in records}
        for issue_id in [i for i in self.fake.issues if i not in wanted]:
            self.fake.delete_issue(issue_id)
        self.upsert(records)

    def upsert(self, records: Sequence[Record]) -> None:
        for issue_id, updated_at, amount, country in records:
            resolved = jira_time(updated_at.replace(tzinfo=UTC))
            if self.fake.issue_by(str(issue_id)) is None:
                self.fake.create_issue(PROJECT, str(amount), issue_id=str(issue_id))
            self.fake.update_issue(
                str(issue_id), status=country, summary=str(amount), resolutiondate=resolved
            )

    def fail_next(self, kind: str) -> None:
        if kind == "transient":  # Jira answers 503 to everything
            self.fake.fail_next(10**6, status=503, retry_after="0")
        else:  # the token is refused
            self.fake.fail_next(10**6, status=401, retry_after=None)

    def heal(self) -> None:
        with self.fake.lock:
            self.fake.failures.clear()


class JiraCase:
    name = "jira"
    connector = "jira"
    table = "jira_issues"
    capabilities = frozenset({"full_refresh", "webhook"})
    features = frozenset({"transient_failure", "terminal_failure"})
    columns = {"id": "issue_id", "updated_at": "resolved", "amount": "summary", "country": "status"}

    @contextmanager
    def open(self, root: Path, env: pytest.MonkeyPatch) -> Iterator[JiraSource]:
        env.setenv("JIRA_TEST_TOKEN", TOKEN)
        with FakeJiraServer() as server:
            yield JiraSource(server)


CASES = [JiraCase()]
