"""The keboola connector as a conformance case: a typed table ``in.c-main.events`` in the
fake Keboola stack (``tests/fake_keboola.py``), exported as gzipped CSV slices."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.connector_cases import FIELDS, Record
from tests.fake_keboola import TOKEN, FakeKeboola, FakeKeboolaServer

BUCKET = "in.c-main"
TABLE = f"{BUCKET}.events"
TOKEN_ENV = "AGNES_TEST_KBC_TOKEN"
BASETYPES = {"id": "INTEGER", "updated_at": "TIMESTAMP", "amount": "FLOAT", "country": "STRING"}


class KeboolaSource:
    def __init__(self, server: FakeKeboolaServer) -> None:
        self.server = server
        self.fake: FakeKeboola = server.fake

    def options(self) -> dict[str, Any]:
        return {
            "url": self.server.url,
            "token_env": TOKEN_ENV,
            "file_type": "csv",
            "job_poll_seconds": 0.01,
            "http_attempts": 2,
        }

    def location(self) -> dict[str, Any]:
        return {"bucket": BUCKET, "source_table": "events"}

    def put(
        self, records: Sequence[Record], *, add: Sequence[str] = (), drop: Sequence[str] = ()
    ) -> None:
        wanted = {f: BASETYPES[f] for f in FIELDS if f not in drop} | dict.fromkeys(add, "STRING")
        if TABLE not in self.fake.tables:
            self.fake.create_table(BUCKET, "events", wanted, primary_key=("id",))
        table = self.fake.tables[TABLE]
        for name in [c for c in table.columns if c not in wanted]:
            self.fake.drop_column(TABLE, name)
        for name in [c for c in wanted if c not in table.columns]:
            self.fake.add_column(TABLE, name, wanted[name])
        self.fake.replace_rows(TABLE, [self._row(r) for r in records])

    def upsert(self, records: Sequence[Record]) -> None:
        self.fake.upsert(TABLE, [self._row(r) for r in records])

    def _row(self, record: Record) -> tuple[Any, ...]:
        values = dict(zip(FIELDS, record, strict=True))
        columns = self.fake.tables[TABLE].columns
        return tuple(values.get(c, f"{c}-{record[0]}") for c in columns)

    def fail_next(self, kind: str) -> None:
        if kind == "transient":  # the stack answers 503 (Retry-After: 0) to every export
            self.fake.fail("/export-async", 503, times=10**6, retry_after="0")
        else:  # the export job ends in error
            self.fake.job_errors[:] = ["Table export failed: injected error"] * 1000

    def heal(self) -> None:
        self.fake.failures.clear()
        self.fake.job_errors.clear()


class KeboolaCase:
    name = "keboola"
    connector = "keboola"
    table = "events"
    capabilities = frozenset({"full_refresh", "incremental", "partitioned"})
    features = frozenset({"discovery", "drift", "transient_failure", "terminal_failure"})
    columns = {f: f for f in FIELDS}

    @contextmanager
    def open(self, root: Path, env: pytest.MonkeyPatch) -> Iterator[KeboolaSource]:
        env.setenv(TOKEN_ENV, TOKEN)
        with FakeKeboolaServer(slices=3) as server:
            yield KeboolaSource(server)


CASES = [KeboolaCase()]
