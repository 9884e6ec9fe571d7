"""One test body per behaviour, run over every connector case (``tests/connector_cases``):
registration, discovery, each declared sync strategy, schema drift, and failures that
keep the last good data (in the extract and through the sync service)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from agnes_sync.connector import Connector, SourceContext, TableRequest
from agnes_sync.connector_registry import available, connector_class
from agnes_sync.contract import ExtractWriter, PublishedTable
from agnes_sync.errors import ConnectorCapabilityMissing, SyncError, TerminalSyncError
from agnes_sync.hashing import file_hash
from tests.conftest import make_settings, register
from tests.connector_cases import (
    BASE_RECORDS,
    FIELDS,
    UPSERTED,
    Case,
    Record,
    Source,
    all_cases,
    merged,
)

CASES = all_cases()


@dataclass
class Harness:
    case: Case
    source: Source
    connector: Connector
    writer: ExtractWriter

    def request(self, **fields: Any) -> TableRequest:
        location = dict(self.source.location())
        options = location.pop("source_options", {})
        return TableRequest(id=self.case.table, options=options, **location, **fields)

    def extract(self, **fields: Any) -> PublishedTable:
        return self.connector.extract(self.request(**fields), self.writer)

    def column(self, field: str) -> str:
        return self.case.columns[field]

    def rows(self) -> list[Record]:
        picked = ", ".join(f'"{self.column(f)}"' for f in FIELDS)
        return [
            _record(r) for r in self._query(f'SELECT {picked} FROM "{self.case.table}" ORDER BY 1')
        ]

    def published_columns(self) -> list[str]:
        return [r[0] for r in self._query(f'DESCRIBE "{self.case.table}"')]

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.writer.paths.db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def hashes(self) -> dict[str, str]:
        data = self.writer.paths.data
        return {str(p.relative_to(data)): file_hash(p) for p in sorted(data.rglob("*.parquet"))}


def _record(row: tuple[Any, ...]) -> Record:
    moment = row[1]
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        moment = moment.replace(tzinfo=None)
    return (int(row[0]), moment, float(row[2]), str(row[3]))


def strategies(case: Case) -> set[str]:
    return {c for c in case.capabilities} & {"full_refresh", "incremental", "partitioned"}


def declares(case: Case, what: str) -> bool:
    return what in case.features or what in strategies(case)


def supporting(*what: str) -> list[Any]:
    """The cases declaring every one of ``what``: each test runs for exactly those (a
    strategy a case does not declare is checked to be refused, below)."""
    return [pytest.param(c, id=c.name) for c in CASES if all(declares(c, w) for w in what)]


@pytest.fixture
def harness(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    case: Case = request.param
    with case.open(tmp_path, monkeypatch) as source:
        cls = connector_class(case.connector)
        connector = cls(SourceContext(case.name, source.options(), tmp_path))
        writer = ExtractWriter(tmp_path / "extracts", case.name)
        yield Harness(case, source, connector, writer)


# --- registration and discovery ----------------------------------------------------------


def test_cases_are_found() -> None:
    assert {"files", "keboola"} <= {c.name for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_registered_under_its_name_with_its_capabilities(case: Case) -> None:
    cls = available()[case.connector]
    assert issubclass(cls, Connector) and cls.name == case.connector
    assert {str(c) for c in cls.capabilities} == set(case.capabilities)
    assert set(case.features) <= {"discovery", "drift", "transient_failure", "terminal_failure"}
    assert set(case.columns) == set(FIELDS)


@pytest.mark.parametrize("harness", supporting("discovery"), indirect=True)
def test_discovery_offers_and_describes_the_table(harness: Harness) -> None:
    harness.source.put(BASE_RECORDS)
    offered = harness.connector.list_tables()
    assert harness.case.table in {t.suggested_id for t in offered}
    columns = {c.name: c.type.upper() for c in harness.connector.describe_table(harness.request())}
    assert columns[harness.column("id")] in ("BIGINT", "INTEGER")
    assert columns[harness.column("updated_at")].startswith("TIMESTAMP")
    assert columns[harness.column("amount")] in ("DOUBLE", "FLOAT")
    assert columns[harness.column("country")] == "VARCHAR"


# --- strategies ----------------------------------------------------------------------------


@pytest.mark.parametrize("harness", supporting("full_refresh"), indirect=True)
def test_full_refresh_replaces_the_table(harness: Harness) -> None:
    harness.source.put(BASE_RECORDS)
    assert harness.extract().rows == len(BASE_RECORDS)
    assert harness.rows() == BASE_RECORDS
    smaller = [r for r in BASE_RECORDS if r[0] != 2]
    harness.source.put(merged(smaller, UPSERTED))
    harness.extract()
    assert harness.rows() == merged(smaller, UPSERTED)


@pytest.mark.parametrize("harness", supporting("incremental"), indirect=True)
def test_incremental_merges_by_key_newest_wins(harness: Harness) -> None:
    fields = {
        "sync_strategy": "incremental",
        "primary_key": (harness.column("id"),),
        "incremental_column": harness.column("updated_at"),
    }
    harness.source.put(BASE_RECORDS)
    harness.extract(**fields)
    assert harness.rows() == BASE_RECORDS
    harness.source.upsert(UPSERTED)
    published = harness.extract(**fields)
    assert harness.rows() == merged(BASE_RECORDS, UPSERTED)
    assert published.rows == len(merged(BASE_RECORDS, UPSERTED))
    harness.extract(**fields)  # nothing changed: nothing duplicated
    assert harness.rows() == merged(BASE_RECORDS, UPSERTED)


@pytest.mark.parametrize("harness", supporting("partitioned"), indirect=True)
def test_partitioned_rewrites_only_changed_partitions(harness: Harness) -> None:
    fields = {
        "sync_strategy": "partitioned",
        "partition_by": harness.column("updated_at"),
        "partition_granularity": "month",
    }
    harness.source.put(BASE_RECORDS)
    first = harness.extract(**fields)
    assert sorted(f.part for f in first.files) == ["2026-01", "2026-02", "2026-03"]
    before = harness.hashes()
    harness.source.upsert(UPSERTED)  # both in March
    second = harness.extract(**fields)
    assert second.unchanged_parts == 2
    after = harness.hashes()
    changed = {name for name in after if before.get(name) != after[name]}
    assert len(changed) == 1 and "2026-03" in next(iter(changed))
    assert harness.rows() == merged(BASE_RECORDS, UPSERTED)


# --- schema drift ----------------------------------------------------------------------------


@pytest.mark.parametrize("harness", supporting("drift"), indirect=True)
def test_schema_drift_publishes_the_new_schema(harness: Harness) -> None:
    harness.source.put(BASE_RECORDS)
    harness.extract()
    harness.source.put(BASE_RECORDS, add=("channel",))
    harness.extract()
    assert "channel" in harness.published_columns()
    assert harness.rows() == BASE_RECORDS
    harness.source.put(BASE_RECORDS, add=("channel",), drop=("amount",))
    harness.extract()
    assert harness.column("amount") not in harness.published_columns()
    assert "channel" in harness.published_columns()


@pytest.mark.parametrize("harness", supporting("drift", "incremental"), indirect=True)
def test_schema_drift_in_an_incremental_table_keeps_the_rows_published(harness: Harness) -> None:
    fields = {
        "sync_strategy": "incremental",
        "primary_key": (harness.column("id"),),
        "incremental_column": harness.column("updated_at"),
    }
    harness.source.put(BASE_RECORDS)
    harness.extract(**fields)
    harness.source.put(merged(BASE_RECORDS, UPSERTED), add=("channel",))
    harness.extract(**fields)
    assert "channel" in harness.published_columns()
    assert harness.rows() == merged(BASE_RECORDS, UPSERTED)


@pytest.mark.parametrize(
    ("harness", "strategy"),
    [
        pytest.param(c, strategy, id=f"{c.name}-{strategy}")
        for strategy in ("incremental", "partitioned")
        for c in CASES
        if strategy not in strategies(c)
    ],
    indirect=["harness"],
)
def test_a_strategy_not_declared_is_refused(harness: Harness, strategy: str) -> None:
    harness.source.put(BASE_RECORDS)
    fields: dict[str, Any] = {"sync_strategy": strategy}
    if strategy == "incremental":
        fields |= {"incremental_column": "updated_at", "primary_key": ("id",)}
    else:
        fields |= {"partition_by": "updated_at", "partition_granularity": "month"}
    with pytest.raises(ConnectorCapabilityMissing):
        harness.connector.check_supported(harness.request(**fields))
    assert harness.hashes() == {}  # nothing was written


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("harness", "kind"),
    [
        pytest.param(c, kind, id=f"{c.name}-{kind}")
        for kind in ("transient", "terminal")
        for c in CASES
        if declares(c, f"{kind}_failure")
    ],
    indirect=["harness"],
)
def test_a_failed_sync_keeps_the_last_good_data(harness: Harness, kind: str) -> None:
    harness.source.put(BASE_RECORDS)
    harness.extract()
    good = harness.hashes()
    harness.source.put(merged(BASE_RECORDS, UPSERTED))
    harness.source.fail_next(kind)
    with pytest.raises(SyncError) as caught:
        harness.extract()
    assert caught.value.transient is (kind == "transient")
    if kind == "terminal":
        assert isinstance(caught.value, TerminalSyncError)
    assert harness.hashes() == good
    assert harness.rows() == BASE_RECORDS
    harness.source.heal()
    harness.extract()
    assert harness.rows() == merged(BASE_RECORDS, UPSERTED)


@pytest.mark.parametrize("case", supporting("terminal_failure"))
def test_the_sync_service_records_a_failure_and_serves_the_last_good_data(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with case.open(tmp_path, monkeypatch) as source:
        _through_the_service(case, source, tmp_path / "data")


def _through_the_service(case: Case, source: Source, data_dir: Path) -> None:
    from agnes_mcp.services import Services

    source.put(BASE_RECORDS)
    settings = make_settings(
        data_dir,
        sources={case.name: {"connector": case.connector, "options": source.options()}},
        scheduler_enabled=False,
        sync_attempts=1,
    )
    services = Services.open(settings)
    try:
        register(services, id=case.table, source_type=case.name, **source.location())
        assert services.sync.sync(case.table).status == "ok"
        source.put(merged(BASE_RECORDS, UPSERTED))
        source.fail_next("terminal")
        failed = services.sync.sync(case.table)
        assert failed.status == "error" and failed.error is not None
        history = services.sync.states.history(case.table)
        assert [h.status for h in history[:2]] == ["error", "ok"]
        assert history[0].error
        con = services.sync.orchestrator.connect()
        try:
            ids = [
                r[0]
                for r in con.execute(
                    f'SELECT "{case.columns["id"]}" FROM "{case.table}"'
                ).fetchall()
            ]
        finally:
            con.close()
        assert sorted(ids) == [r[0] for r in BASE_RECORDS]
        source.heal()
        assert services.sync.sync(case.table).status == "ok"
        if "drift" in case.features:
            source.put(BASE_RECORDS, add=("channel",))
            assert services.sync.sync(case.table).notes == ["schema changed: added channel"]
            history = services.sync.states.history(case.table)
            assert history[0].notes == "schema changed: added channel"
    finally:
        services.close()
