"""The keboola connector at the wire, against a local server speaking the Storage API
(``tests/fake_keboola.py``): discovery, the export request, sliced and single files,
parquet, incremental exports and chunked first loads, drift, and failures tagged right."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from agnes_sync.connector import Column, SourceContext, TableRequest
from agnes_sync.contract import ExtractWriter
from agnes_sync.errors import (
    InvalidTableSpec,
    SourceDataError,
    SourceTableNotFound,
    TerminalSyncError,
    TransientSyncError,
)
from agnes_sync.extract_reader import read_extract
from connectors.keboola.answers import MalformedAnswer
from connectors.keboola.blob_urls import resolve, sign_v4
from connectors.keboola.client import StorageClient, TokenRefused
from connectors.keboola.connector import KeboolaConnector
from connectors.keboola.export import (
    ExportedFile,
    Exporter,
    ExportParams,
    JobNotFound,
    reader_sql,
    row_separator,
    slice_index,
)
from connectors.keboola.filters import where_filters
from connectors.keboola.state import read_state
from tests.fake_keboola import TOKEN, FakeKeboola, FakeKeboolaServer

ENV = "AGNES_TEST_KBC_TOKEN"
COLUMNS = {"id": "INTEGER", "updated_at": "TIMESTAMP", "amount": "NUMERIC", "country": "STRING"}
ROWS = [
    (i, datetime(2026, 1, 1 + i % 28, 10, 0), i * 1.5, ["US", "CA", "DE"][i % 3])
    for i in range(1, 61)
]


@dataclass
class Stack:
    server: FakeKeboolaServer
    root: Path
    env: pytest.MonkeyPatch

    @property
    def fake(self) -> FakeKeboola:
        return self.server.fake

    def connector(self, **options: Any) -> KeboolaConnector:
        base = {"url": self.server.url, "token_env": ENV, "job_poll_seconds": 0.01}
        return KeboolaConnector(SourceContext("kbc", base | options, self.root))

    @property
    def writer(self) -> ExtractWriter:
        return ExtractWriter(self.root / "extracts", "kbc")

    def rows(self, table: str, sql: str = "SELECT * FROM {} ORDER BY 1") -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.writer.paths.db), read_only=True)
        try:
            return con.execute(sql.format(f'"{table}"')).fetchall()
        finally:
            con.close()


def orders(**fields: Any) -> TableRequest:
    return TableRequest(id="orders", bucket="in.c-main", source_table="orders", **fields)


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv(ENV, TOKEN)
    with FakeKeboolaServer(slices=3) as server:
        server.fake.create_table("in.c-main", "orders", COLUMNS, ROWS, primary_key=("id",))
        yield Stack(server, tmp_path, monkeypatch)


# --- discovery ---------------------------------------------------------------------------


def test_discovery_verifies_the_token_and_lists_tables_aliases_and_linked_buckets(
    stack: Stack,
) -> None:
    fake = stack.fake
    fake.create_table("in.c-crm", "orders", {"id": "STRING", "name": "STRING"}, typed=False)
    fake.create_alias("out.c-shared", "orders_view", "in.c-main.orders")
    fake.link_bucket("in.c-linked", "in.c-crm")
    fake.tables["in.c-main.orders"].description = "Orders from the web shop"
    offered = stack.connector().list_tables()
    assert fake.requests[0]["path"] == "/v2/storage/tokens/verify"
    listings = fake.calls(r"/buckets/.+/tables$")
    assert listings and all(r["query"]["include"] == "columns,metadata" for r in listings)
    by_place = {(t.bucket, t.source_table): t for t in offered}
    assert set(by_place) == {
        ("in.c-main", "orders"),
        ("in.c-crm", "orders"),
        ("out.c-shared", "orders_view"),
        ("in.c-linked", "orders"),
    }
    ids = [t.suggested_id for t in offered]
    assert len(set(ids)) == len(ids) and "orders_view" in ids
    assert "60 rows" in by_place[("in.c-main", "orders")].description
    assert by_place[("in.c-main", "orders")].description.startswith("Orders from the web shop")


def test_the_token_keboola_echoes_in_verify_is_not_handed_on(stack: Stack) -> None:
    """``GET /v2/storage/tokens/verify`` answers with the token itself (``token``)."""
    described = stack.connector().verify()
    assert described["id"] == "44" and TOKEN not in json.dumps(described)


def test_describe_types_columns_from_the_definition(stack: Stack) -> None:
    columns = stack.connector().describe_table(orders())
    assert [(c.name, c.type, c.nullable) for c in columns] == [
        ("id", "BIGINT", False),
        ("updated_at", "TIMESTAMP", True),
        ("amount", "DECIMAL(12,2)", True),
        ("country", "VARCHAR", True),
    ]


def test_untyped_tables_are_strings_unless_typed_by_an_option(stack: Stack) -> None:
    stack.fake.create_table("in.c-main", "raw", COLUMNS, ROWS, typed=False)
    connector = stack.connector()
    plain = TableRequest(id="raw", bucket="in.c-main", source_table="raw")
    assert {c.type for c in connector.describe_table(plain)} == {"VARCHAR"}
    typed = TableRequest(
        id="raw",
        source_table="in.c-main.raw",
        options={
            "column_types": {"id": "BIGINT", "updated_at": "TIMESTAMP"},
            "columns": ["id", "updated_at"],
        },
    )
    assert [(c.name, c.type) for c in connector.describe_table(typed)] == [
        ("id", "BIGINT"),
        ("updated_at", "TIMESTAMP"),
    ]
    connector.extract(typed, stack.writer)
    assert stack.rows("raw")[0] == (1, datetime(2026, 1, 2, 10, 0))


def test_a_numeric_filter_on_an_untyped_table_compares_numbers(stack: Stack) -> None:
    """Every column of an untyped table is text; ``amount > 10`` is sent to Keboola as a
    DOUBLE comparison and applied again here the same way (it was a binder error)."""
    stack.fake.create_table("in.c-main", "raw", COLUMNS, ROWS, typed=False)
    request = TableRequest(
        id="raw", bucket="in.c-main", source_table="raw",
        where_filters="amount > 85.5 AND id IN (58, 59, 60, 7)",
    )  # fmt: skip
    connector = stack.connector(file_type="csv")
    connector.extract(request, stack.writer)
    assert sorted(r[0] for r in stack.rows("raw")) == ["58", "59", "60"]  # text, as exported
    sent = stack.fake.exports[-1]["whereFilters"]
    assert {"column": "amount", "operator": "gt", "values": ["85.5"], "dataType": "DOUBLE"} in sent
    between = replace(request, where_filters="amount BETWEEN 1.5 AND 4.5")
    connector.extract(between, stack.writer)
    assert sorted(r[0] for r in stack.rows("raw")) == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"options": {"column_types": {"nope": "BIGINT"}}}, InvalidTableSpec),
        ({"options": {"columns": ["id", "amout"]}}, InvalidTableSpec),
        ({"options": {"column_types": {"id": "BIGINT; DROP"}}}, InvalidTableSpec),
        ({"source_table": "missing"}, SourceTableNotFound),
        ({"bucket": None, "source_table": "orders"}, InvalidTableSpec),
    ],
)
def test_bad_registrations_are_refused_clearly(
    stack: Stack, fields: dict[str, Any], error: type[Exception]
) -> None:
    request = TableRequest(
        **({"id": "orders", "bucket": "in.c-main", "source_table": "orders"} | fields)
    )
    with pytest.raises(error):
        stack.connector().describe_table(request)


@pytest.mark.parametrize(
    "options",
    [
        {"url": "ftp://x", "token_env": ENV},
        {"url": "https://c.example.com/v2", "token_env": ENV},
        {"url": "https://c.example.com", "token_env": "NOT-A-NAME"},
        {"url": "https://c.example.com"},
    ],
)
def test_source_options_are_validated(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidTableSpec):
        KeboolaConnector(SourceContext("kbc", options, tmp_path))


# --- the export --------------------------------------------------------------------------------


def test_the_export_request_is_the_documented_json_and_files_get_no_token(stack: Stack) -> None:
    stack.connector(file_type="csv").extract(
        orders(where_filters="country IN ('US', 'CA') AND amount > 15"), stack.writer
    )
    post = stack.fake.calls("/export-async$", "POST")[0]
    assert post["has_token"]
    assert post["body"] == {
        "columns": "id,updated_at,amount,country",
        "format": "rfc",
        "gzip": True,
        "fileType": "csv",
        "whereFilters": [
            {"column": "country", "operator": "eq", "values": ["US", "CA"]},
            {"column": "amount", "operator": "gt", "values": ["15"], "dataType": "DOUBLE"},
        ],
    }
    assert stack.fake.calls(r"/files/\d+$")[0]["query"] == {"federationToken": "1"}
    blobs = stack.fake.calls("^/kbc-sapi-files/")
    assert len(blobs) == 4 and not any(b["has_token"] for b in blobs)  # manifest + 3 slices
    assert stack.fake.leaked_token == []
    expected = [r[0] for r in ROWS if r[3] in ("US", "CA") and r[2] > 15]
    assert [r[0] for r in stack.rows("orders")] == expected


def test_slices_are_read_in_slice_index_order_not_manifest_order(stack: Stack) -> None:
    stack.fake.slices = 12  # names ..._0_0_2 and ..._0_0_10: a text sort would misorder them
    published = stack.connector(file_type="csv").extract(orders(), stack.writer)
    path = stack.writer.paths.root / published.files[0].path
    ids = [r[0] for r in duckdb.sql(f"SELECT id FROM read_parquet('{path}')").fetchall()]
    assert ids == [r[0] for r in ROWS]  # the export's order, slice after slice


@pytest.mark.parametrize("file_type", ["csv", "parquet"])
def test_text_survives_the_export_exactly(stack: Stack, file_type: str) -> None:
    texts = ["plain", "with,comma", 'with "quotes"', "two\nlines", "", None, "ünïcode ✓"]
    stack.fake.create_table(
        "in.c-main", "notes", {"id": "INTEGER", "text": "STRING"}, list(enumerate(texts))
    )
    request = TableRequest(id="notes", bucket="in.c-main", source_table="notes")
    stack.connector(file_type=file_type).extract(request, stack.writer)
    assert stack.rows("notes") == list(enumerate(texts))  # '' and NULL stay apart


@pytest.mark.parametrize("file_type", ["auto", "parquet", "csv"])
def test_a_numeric_wider_than_duckdb_holds_is_kept_exact_as_text(
    stack: Stack, file_type: str
) -> None:
    """A NUMERIC(76,38) column (a BigQuery backend's BIGNUMERIC) was typed DOUBLE: its
    values were published rounded to about 16 digits, and nothing said so. It is
    published as its exact text (exported as CSV, which holds every digit), and the
    sync's notes name it and say why its type changed; NUMERIC(38,9) stays a decimal."""
    exact = "12345678901234567890123456789012345678.12345678901234567890123456789012345678"
    stack.fake.create_table(
        "in.c-main",
        "ledger",
        {"id": "INTEGER", "big": "NUMERIC(76,38)", "fits": "NUMERIC(38,9)"},
        [(1, exact, "1.5"), (2, None, None)],
    )
    request = TableRequest(id="ledger", bucket="in.c-main", source_table="ledger")
    connector = stack.connector(file_type=file_type)
    assert {c.name: c.type for c in connector.describe_table(request)} == {
        "id": "BIGINT",
        "big": "VARCHAR",
        "fits": "DECIMAL(38,9)",
    }
    published = connector.extract(request, stack.writer)
    assert stack.rows("ledger") == [(1, exact, Decimal("1.5")), (2, None, None)]
    said = [n for n in published.notes if "DECIMAL(38)" in n]
    assert len(said) == 1 and "big NUMERIC(76,38)" in said[0] and "fits" not in said[0]


@pytest.mark.parametrize("slices", [0, 3, 12])
def test_a_line_break_inside_a_quoted_field_starting_a_slice(stack: Stack, slices: int) -> None:
    """DuckDB, not sniffing, took the first line break of a slice for the row separator:
    a CRLF inside a quoted first field (a Windows text, an e-mail) then read as no row at
    all, and the sync failed as bad data, depending on how Keboola sliced the export."""
    texts = [f"Dear team,\r\nline {i}\r\n" if i % 2 == 0 else f"plain {i}" for i in range(24)]
    stack.fake.slices = slices
    stack.fake.create_table(
        "in.c-main", "mails", {"id": "INTEGER", "text": "STRING"}, list(enumerate(texts))
    )
    request = TableRequest(id="mails", bucket="in.c-main", source_table="mails")
    stack.connector(file_type="csv").extract(request, stack.writer)
    assert stack.rows("mails") == list(enumerate(texts))


@pytest.mark.parametrize(
    ("content", "separator"),
    [
        (b'1,"a\r\nb"\n2,c\n', "\\n"),
        (b'1,"a\nb"\r\n2,c\r\n', "\\r\\n"),
        (b'1,"say ""hi""\r\n"\n2,c\n', "\\n"),  # doubled quotes inside the field
        (b'1,"no line break at all"', None),
    ],
)
def test_the_row_separator_is_the_first_line_break_outside_quotes(
    tmp_path: Path, content: bytes, separator: str | None
) -> None:
    import gzip

    plain, packed = tmp_path / "slice.csv", tmp_path / "slice.csv.gz"
    plain.write_bytes(content)
    packed.write_bytes(gzip.compress(content))
    assert row_separator(plain) == separator and row_separator(packed) == separator


def test_crlf_rows_with_line_breaks_inside_fields_read_exactly(tmp_path: Path) -> None:
    slice_file = tmp_path / "slice.csv"
    slice_file.write_bytes(b'1,"Dear\nteam"\r\n2,plain\r\n3,"x\r\ny"\r\n')
    columns = [Column("id", "BIGINT", True), Column("text", "VARCHAR", True)]
    sql = reader_sql(ExportedFile(file_type="csv", slices=[slice_file]), columns)
    assert duckdb.sql(sql).fetchall() == [(1, "Dear\nteam"), (2, "plain"), (3, "x\r\ny")]


def test_the_fake_reads_form_bodies_as_keboola_does(stack: Stack) -> None:
    """The form encoding other clients use: whereFilters only count when flattened."""
    url = f"{stack.server.url}/v2/storage/tables/in.c-main.orders/export-async"
    headers = {"X-StorageApi-Token": TOKEN}
    flattened = {
        "columns": "id,country",
        "whereFilters[0][column]": "country",
        "whereFilters[0][values][]": ["US", "CA"],
        "whereFilters[0][operator]": "eq",
    }
    assert httpx.post(url, data=flattened, headers=headers).status_code == 202
    assert stack.fake.exports[-1]["whereFilters"] == [
        {"column": "country", "values": ["US", "CA"], "operator": "eq"}
    ]
    unflattened = {"columns": "id", "whereFilters": '[{"column": "country", "values": ["US"]}]'}
    assert httpx.post(url, data=unflattened, headers=headers).status_code == 202
    assert stack.fake.exports[-1]["whereFilters"] == []  # silently ignored


def test_a_manifest_file_is_sliced_whatever_its_is_sliced_says(stack: Stack) -> None:
    """The reference's file detail of a ``.csvmanifest`` says ``isSliced: false``: its url
    was then read as the data (one bad row) instead of as the list of slices."""
    stack.fake.says_sliced = False
    assert stack.connector(file_type="csv").extract(orders(), stack.writer).rows == len(ROWS)
    assert len(stack.fake.calls(r"_0_0_\d+\.csv\.gz$")) == 3


def test_a_slice_named_twice_in_the_manifest_is_read_once(stack: Stack) -> None:
    """A manifest naming one slice twice had it downloaded twice and its rows published
    twice (a full refresh of 60 rows held 80)."""
    stack.fake.repeat_first_entry = True
    published = stack.connector(file_type="csv").extract(orders(), stack.writer)
    assert published.rows == len(ROWS)
    assert sorted(r[0] for r in stack.rows("orders")) == [r[0] for r in ROWS]


@pytest.mark.parametrize("manifest", [[], {"entries": [{"uri": "x"}]}, {"entries": "x"}])
def test_a_manifest_of_another_shape_is_a_typed_failure(manifest: Any) -> None:
    from connectors.keboola.export import manifest_urls

    with pytest.raises(TerminalSyncError, match="manifest of Keboola's file 7"):
        manifest_urls(manifest, 7)
    assert manifest_urls({}, 7) == [] and manifest_urls({"entries": [{"url": "u"}]}, 7) == ["u"]


def test_slice_index_sorts_naturally() -> None:
    names = [f"s3://b/exp/1.csv.gz_0_0_{i}.csv.gz" for i in (10, 2, 0, 1, 11)]
    assert [n.rsplit("_", 1)[1] for n in sorted(names, key=slice_index)] == [
        "0.csv.gz", "1.csv.gz", "2.csv.gz", "10.csv.gz", "11.csv.gz",
    ]  # fmt: skip


@pytest.mark.parametrize("gzip_encoded", [False, True])
def test_a_single_unsliced_gzip_file(stack: Stack, gzip_encoded: bool) -> None:
    stack.fake.slices = 0
    stack.fake.gzip_encoded = gzip_encoded  # Content-Encoding: gzip must not be decoded twice
    published = stack.connector(file_type="csv").extract(orders(), stack.writer)
    assert published.rows == len(ROWS)
    assert stack.rows("orders")[0] == (1, datetime(2026, 1, 2, 10, 0), 1.5, "CA")


@pytest.mark.parametrize("file_type", ["csv", "parquet"])
def test_slices_compressed_again_for_the_wire_read_as_the_objects(
    stack: Stack, file_type: str
) -> None:
    """Content-Encoding: gzip on a slice (a proxy's, a CDN's) is undone on the way in: the
    object on disk is the one stored (a .csv.gz, a parquet), not its compressed copy."""
    stack.fake.gzip_in_transit = True
    published = stack.connector(file_type=file_type).extract(orders(), stack.writer)
    assert published.rows == len(ROWS)
    assert stack.rows("orders")[0] == (1, datetime(2026, 1, 2, 10, 0), 1.5, "CA")


def test_parquet_when_the_stack_offers_it_else_csv(stack: Stack) -> None:
    connector = stack.connector()  # file_type: auto
    connector.extract(orders(), stack.writer)
    assert stack.fake.exports[-1]["fileType"] == "parquet"
    assert len(stack.rows("orders")) == len(ROWS)

    stack.fake.accept_parquet = False
    refusing = stack.connector()
    refusing.extract(orders(), stack.writer)
    refusing.extract(orders(), stack.writer)
    asked = [r["body"]["fileType"] for r in stack.fake.calls("/export-async$", "POST")]
    assert asked == ["parquet", "parquet", "csv", "csv"]  # refused once, then CSV only
    assert stack.rows("orders")[-1][0] == 60


def test_an_empty_export_publishes_the_schema(stack: Stack) -> None:
    stack.fake.create_table("in.c-main", "empty", COLUMNS, [])
    request = TableRequest(id="empty", bucket="in.c-main", source_table="empty")
    assert stack.connector(file_type="csv").extract(request, stack.writer).rows == 0
    assert [r[0] for r in stack.rows("empty", "DESCRIBE {}")] == list(COLUMNS)


def test_aliases_and_linked_tables_extract_like_tables(stack: Stack) -> None:
    stack.fake.create_alias("out.c-shared", "orders_view", "in.c-main.orders")
    stack.fake.link_bucket("in.c-linked", "in.c-main")
    connector = stack.connector(file_type="csv")
    for bucket, name in (("out.c-shared", "orders_view"), ("in.c-linked", "orders")):
        request = TableRequest(id="copy", bucket=bucket, source_table=name)
        assert connector.describe_table(request)[0].type == "BIGINT"
        assert connector.extract(request, stack.writer).rows == len(ROWS)


# --- incremental -------------------------------------------------------------------------------


def incremental(**fields: Any) -> TableRequest:
    return orders(sync_strategy="incremental", incremental_column="updated_at", **fields)


def test_incremental_exports_rows_changed_since_the_last_export(stack: Stack) -> None:
    connector = stack.connector(file_type="csv")
    connector.extract(incremental(incremental_window_days=2), stack.writer)
    first_job = stack.fake.jobs[max(stack.fake.jobs)]
    stack.fake.advance(hours=1)
    stack.fake.upsert(
        "in.c-main.orders",
        [(5, datetime(2026, 3, 1), 99.0, "US"), (100, datetime(2026, 3, 2), 1.0, "DE")],
    )
    published = connector.extract(incremental(incremental_window_days=2), stack.writer)
    since = int(datetime.fromisoformat(first_job["createdTime"]).timestamp()) - 2 * 86400
    assert stack.fake.exports[-1]["changedSince"] == str(since)
    assert published.rows == len(ROWS) + 1
    assert stack.rows("orders", "SELECT * FROM {} WHERE id IN (5, 100) ORDER BY id") == [
        (5, datetime(2026, 3, 1), 99.0, "US"),
        (100, datetime(2026, 3, 2), 1.0, "DE"),
    ]
    state = read_state(stack.writer, "orders")
    assert state is not None and state.load_until is None


def test_the_first_load_goes_back_max_history_days(stack: Stack) -> None:
    now = stack.fake.now()
    stack.fake.create_table(
        "in.c-main", "events", COLUMNS, primary_key=("id",), at=now - timedelta(days=90)
    )
    stack.fake.upsert(
        "in.c-main.events", [(1, datetime(2026, 1, 1), 1.0, "US")], at=now - timedelta(days=40)
    )
    stack.fake.upsert(
        "in.c-main.events", [(2, datetime(2026, 1, 2), 2.0, "US")], at=now - timedelta(days=5)
    )
    request = TableRequest(
        id="events", bucket="in.c-main", source_table="events", sync_strategy="incremental",
        incremental_column="updated_at", max_history_days=30,
    )  # fmt: skip
    stack.connector(file_type="csv").extract(request, stack.writer)
    assert [r[0] for r in stack.rows("events")] == [2]
    since = datetime.fromtimestamp(int(stack.fake.exports[-1]["changedSince"]), UTC)
    assert timedelta(days=29) < now - since < timedelta(days=31)


def test_max_history_counts_back_from_the_instant_text_with_an_offset_names(
    stack: Stack,
) -> None:
    """``2026-01-03 01:00:00+0200`` is 23:00 UTC on the 2nd: a day back from it is 23:00
    on the 1st, so a row of 00:30 UTC on the 2nd is kept. Cast to a TIMESTAMP, the offset
    was dropped and the row counted as older than the history and deleted."""
    stack.fake.create_table(
        "in.c-main", "stamps", {"id": "INTEGER", "at": "STRING"},
        [(1, "2026-01-03 01:00:00+0200"), (2, "2026-01-02 00:30:00+0000")], primary_key=("id",),
    )  # fmt: skip
    request = TableRequest(
        id="stamps", bucket="in.c-main", source_table="stamps", sync_strategy="incremental",
        incremental_column="at", max_history_days=1,
    )  # fmt: skip
    stack.connector(file_type="csv").extract(request, stack.writer)
    assert [r[0] for r in stack.rows("stamps")] == [1, 2]


def test_a_first_incremental_load_of_an_alias_has_the_rows_imported_before_it(
    stack: Stack,
) -> None:
    """``changedSince`` filters by import time: an alias created after its source's rows
    were imported (and every table of a linked bucket) must not start at its creation."""
    stack.fake.advance(hours=2)
    stack.fake.create_alias("out.c-shared", "orders_view", "in.c-main.orders")
    request = TableRequest(
        id="view", bucket="out.c-shared", source_table="orders_view",
        sync_strategy="incremental", incremental_column="updated_at", primary_key=["id"],
    )  # fmt: skip
    assert stack.connector(file_type="csv").extract(request, stack.writer).rows == len(ROWS)
    assert stack.fake.exports[-1]["changedSince"] is None


def test_initial_load_chunk_days_splits_a_first_load_and_resumes_after_a_failure(
    stack: Stack,
) -> None:
    fake = stack.fake
    now = fake.now()
    fake.create_table(
        "in.c-main", "events", COLUMNS, primary_key=("id",), at=now - timedelta(days=60)
    )
    for i, age in enumerate((25, 15, 5, 1), start=1):
        fake.upsert(
            "in.c-main.events",
            [(i, datetime(2026, 2, i), float(i), "US")],
            at=now - timedelta(days=age),
        )
    request = TableRequest(
        id="events", bucket="in.c-main", source_table="events", sync_strategy="incremental",
        incremental_column="updated_at", max_history_days=30, initial_load_chunk_days=10,
    )  # fmt: skip
    connector = stack.connector(file_type="csv")
    fake.job_errors[:] = [None, "Snowflake: warehouse suspended"]  # the second chunk fails
    with pytest.raises(TerminalSyncError, match="warehouse suspended"):
        connector.extract(request, stack.writer)
    assert [r[0] for r in stack.rows("events")] == [1]  # the first chunk is kept
    # ... and says it is not all there is: every answer reading it repeats this
    said = read_extract(stack.writer.paths).tables["events"].incomplete
    assert said is not None and "first load from Keboola holds the rows imported before" in said
    assert "(2 more parts" in said and said.endswith("the next sync loads the rest.")
    state = read_state(stack.writer, "events")
    assert state is not None and state.load_until is not None
    connector.extract(request, stack.writer)
    assert [r[0] for r in stack.rows("events")] == [1, 2, 3, 4]
    assert read_extract(stack.writer.paths).tables["events"].incomplete is None
    ranges = [(e["changedSince"], e["changedUntil"]) for e in fake.exports]
    assert ranges[0][1] == ranges[1][0] == ranges[2][0]  # resumed where it failed
    assert ranges[2][1] == ranges[3][0] and ranges[3][1] is None  # the last chunk is open
    assert len(ranges) == 4
    state = read_state(stack.writer, "events")
    assert state is not None and state.load_until is None


def test_an_answer_that_is_not_json_is_worth_another_try(stack: Stack) -> None:
    """A 200 whose body does not parse (cut off, a proxy's page) was terminal."""
    stack.fake.fail("/tables/", 200, raw_body="<html>Service Unavailable</html>")
    with pytest.raises(TransientSyncError, match="not JSON"):
        stack.connector(file_type="csv").extract(orders(), stack.writer)
    assert stack.connector(file_type="csv").extract(orders(), stack.writer).rows == len(ROWS)


def test_a_text_value_over_two_megabytes_reads_from_csv(stack: Stack) -> None:
    """Keboola holds text values up to 16 MiB; one over 2,000,000 bytes (DuckDB's default
    longest CSV line) failed every CSV sync as 'does not read as its columns', advising to
    set column_types."""
    long_text = "x" * 3_000_000
    stack.fake.create_table("in.c-main", "docs", {"id": "INTEGER", "body": "STRING"},
                            [(1, long_text), (2, "short")])  # fmt: skip
    request = TableRequest(id="docs", bucket="in.c-main", source_table="docs")
    assert stack.connector(file_type="csv").extract(request, stack.writer).rows == 2
    assert stack.rows("docs", "SELECT id, length(body) FROM {} ORDER BY 1") == [
        (1, 3_000_000),
        (2, 5),
    ]


def test_a_row_past_the_longest_read_names_the_way_out(stack: Stack) -> None:
    """A row longer than the bound failed as 'Publishing table ... failed: Not implemented
    Error: The Parallel CSV Reader currently does not support a full read on this file'."""
    stack.fake.create_table("in.c-main", "docs", {"id": "INTEGER", "a": "STRING", "b": "STRING"},
                            [(1, "x" * 17_000_000, "y" * 17_000_000)])  # fmt: skip
    request = TableRequest(id="docs", bucket="in.c-main", source_table="docs")
    with pytest.raises(SourceDataError, match=r"longer than 32\.0 MiB") as failed:
        stack.connector(file_type="csv").extract(request, stack.writer)
    assert "columns option" in (failed.value.hint or "")


def test_a_slice_cut_off_is_transient_not_a_terminal_publish_failure(stack: Stack) -> None:
    """A gzip slice cut off (an answer delimited by the connection's close has no length
    to check it by, or an object broken in the store) failed the sync as terminal
    ("Publishing table 'orders' failed: IO Error: Unexpected end of GZIP stream: <path>")."""
    stack.fake.create_table("in.c-main", "big", {"id": "INTEGER", "note": "STRING"},
                            [(i, "x" * 40) for i in range(3000)])  # fmt: skip
    stack.fake.cut_slice = 1
    request = TableRequest(id="big", bucket="in.c-main", source_table="big")
    with pytest.raises(TransientSyncError, match="not a whole gzip file") as failed:
        stack.connector(file_type="csv").extract(request, stack.writer)
    assert str(stack.root) not in failed.value.message
    stack.fake.cut_slice = None
    stack.fake.cache.clear()
    assert stack.connector(file_type="csv").extract(request, stack.writer).rows == 3000


def test_a_damaged_export_keboola_keeps_cached_is_not_taken_again(stack: Stack) -> None:
    """Keboola answers the same export parameters on unchanged data with its cached
    file: a slice stored cut off came back at every retry, and the table never synced
    again. The retry asks for a fresh export (other parameters) and publishes it."""
    stack.fake.create_table("in.c-main", "big", {"id": "INTEGER", "note": "STRING"},
                            [(i, "x" * 40) for i in range(3000)])  # fmt: skip
    stack.fake.cut_slice = 1
    request = TableRequest(id="big", bucket="in.c-main", source_table="big")
    connector = stack.connector(file_type="csv")
    with pytest.raises(TransientSyncError, match="not a whole gzip file"):
        connector.extract(request, stack.writer)
    stack.fake.cut_slice = None  # a new export would be whole; the cached one stays cut
    assert connector.extract(request, stack.writer).rows == 3000
    bodies = [r["body"] for r in stack.fake.calls("/export-async$", "POST")]
    assert [b["gzip"] for b in bodies[-3:]] == [True, True, False]
    assert stack.rows("big", "SELECT count(DISTINCT id) FROM {}") == [(3000,)]


@pytest.mark.parametrize(
    ("path", "body", "said"),
    [
        (r"/buckets$", '{"error": "Project is disabled"}', "an error (Project is disabled)"),
        (r"/buckets$", '[{"name": "in.c-main"}]', "a list of 1"),
        (r"/buckets/.+/tables$", "[1, 2]", "a list of 2"),
        (r"/tables/in\.c-main\.orders$", "[]", "an empty list"),
        (r"/tables/in\.c-main\.orders$", '{"name": "orders"}', "an object ('name')"),
        (r"/tables/in\.c-main\.orders$", '{"id": "in.c-main.orders", "columns": "id"}', "a string"),
        (
            r"/tables/in\.c-main\.orders$",
            '{"id": "in.c-main.orders", "primaryKey": "id"}',
            "a string",
        ),
        (r"/export-async$", '"queued"', "a string"),
        (r"/export-async$", '{"status": "waiting"}', "an object ('status')"),
        (r"/jobs/", "[]", "an empty list"),
        (r"/jobs/", "null", "null"),
    ],
)
def test_an_answer_of_another_shape_is_a_typed_failure_naming_the_call(
    stack: Stack, path: str, body: str, said: str
) -> None:
    """A 200 carrying an error, a proxy's JSON or an object where a list belongs failed with
    Python's KeyError, TypeError or AttributeError."""
    stack.fake.fail(path, 200, raw_body=body)
    connector = stack.connector(file_type="csv", http_attempts=1)
    with pytest.raises(MalformedAnswer) as failed:
        if "buckets" in path:
            connector.list_tables()
        else:
            connector.extract(orders(), stack.writer)
    assert failed.value.transient and said in failed.value.message
    assert stack.connector(file_type="csv").extract(orders(), stack.writer).rows == len(ROWS)


def test_incremental_merges_by_keboolas_primary_key_and_needs_one(stack: Stack) -> None:
    connector = stack.connector(file_type="csv")
    assert connector.extract(incremental(), stack.writer).rows == len(ROWS)  # key: Keboola's
    stack.fake.create_table("in.c-main", "log", COLUMNS, ROWS)
    request = TableRequest(
        id="log", bucket="in.c-main", source_table="log", sync_strategy="incremental",
        incremental_column="updated_at",
    )  # fmt: skip
    with pytest.raises(InvalidTableSpec, match="primary key"):
        connector.extract(request, stack.writer)


def test_schema_drift_is_recorded(stack: Stack) -> None:
    connector = stack.connector(file_type="csv")
    connector.extract(incremental(), stack.writer)
    stack.fake.add_column("in.c-main.orders", "channel")
    stack.fake.drop_column("in.c-main.orders", "country")
    published = connector.extract(incremental(), stack.writer)
    assert published.notes == [
        "schema changed: added channel",
        "schema changed: removed country in Keboola (kept here: the rows exported since "
        "have NULL in it, the others their last values)",
    ]
    assert connector.extract(orders(), stack.writer).notes == ["schema changed: removed country"]


# --- failures ----------------------------------------------------------------------------------


def client(stack: Stack, **kwargs: Any) -> tuple[StorageClient, list[float]]:
    slept: list[float] = []
    return StorageClient(stack.server.url, ENV, sleep=slept.append, **kwargs), slept


def test_429_waits_as_long_as_retry_after_says(stack: Stack) -> None:
    """A pause asked for is waited; one of no time (``0``, a date already past) is not a
    licence to call at once: those called again without a pause until the attempts ran
    out. They wait the client's own backoff (0.5 s, doubling)."""
    api, slept = client(stack)
    stack.fake.fail("/tokens/verify", 429, retry_after="7")
    stack.fake.fail("/tokens/verify", 429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    stack.fake.fail("/tokens/verify", 503, retry_after="0")
    assert api.get("/v2/storage/tokens/verify")["id"] == "44"
    assert slept == [7.0, 1.0, 2.0]


def test_a_retry_after_beyond_the_cap_fails_as_transient_at_once(stack: Stack) -> None:
    api, slept = client(stack, max_retry_after=120)
    stack.fake.fail("/buckets", 503, retry_after="600", message="maintenance")
    with pytest.raises(TransientSyncError, match="600 s"):
        api.get("/v2/storage/buckets")
    assert slept == [] and len(stack.fake.calls("/buckets")) == 1


@pytest.mark.parametrize("asked", ["9" * 400, "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_retry_after_of_centuries_is_kept_as_a_day(stack: Stack, asked: str) -> None:
    """400 digits (a float of them is infinite) failed the sync with an untyped
    OverflowError; a date centuries away was carried as asked, longer than any timer."""
    api, slept = client(stack, max_retry_after=120)
    stack.fake.fail("/buckets", 503, retry_after=asked, message="maintenance")
    with pytest.raises(TransientSyncError, match="longer than") as caught:
        api.get("/v2/storage/buckets")
    assert caught.value.retry_after_seconds == 86_400 and slept == []


def test_a_maintenance_says_why_and_when_and_nothing_calls_before_then(stack: Stack) -> None:
    api, slept = client(stack, max_retry_after=120)
    stack.fake.maintenance("/buckets", retry_after="559")
    with pytest.raises(TransientSyncError, match="being migrated") as caught:
        api.get("/v2/storage/buckets")
    assert caught.value.retry_after_seconds == 559 and slept == []
    api, slept = client(stack, attempts=2)
    stack.fake.maintenance("/buckets", retry_after="3", times=2)
    with pytest.raises(TransientSyncError, match="after 2 attempts") as caught:
        api.get("/v2/storage/buckets")
    assert caught.value.retry_after_seconds == 3 and slept == [3.0]


def test_a_redirect_of_the_api_is_not_followed_and_names_the_url_to_set(stack: Stack) -> None:
    moved = "https://connection.example.com"
    stack.fake.fail(
        "/tokens/verify",
        301,
        raw_body="<html>Moved Permanently</html>",
        headers={"Location": f"{moved}/v2/storage/tokens/verify?x=1"},
    )
    with pytest.raises(TerminalSyncError, match="redirected") as caught:
        stack.connector().list_tables()
    assert (
        not caught.value.transient
        and caught.value.hint == f"Set the source's url option to {moved}."
    )
    assert len(stack.fake.calls("/tokens/verify")) == 1 and TOKEN not in caught.value.message


def test_5xx_is_retried_with_backoff_then_transient(stack: Stack) -> None:
    api, slept = client(stack, attempts=4)
    stack.fake.fail("/buckets", 502, times=2)
    assert api.get("/v2/storage/buckets")
    assert slept == [0.5, 1.0]
    stack.fake.fail("/buckets", 500, times=10)
    with pytest.raises(TransientSyncError, match="after 4 attempts"):
        api.get("/v2/storage/buckets")


def test_a_refused_token_is_terminal_and_named_by_its_variable(stack: Stack) -> None:
    stack.fake.tokens[TOKEN].expired = True
    with pytest.raises(TokenRefused) as caught:
        stack.connector().list_tables()
    text = f"{caught.value.message} {caught.value.hint} {caught.value.details}"
    assert f"${ENV}" in caught.value.message and TOKEN not in text


def test_a_token_without_access_to_the_bucket_names_it(stack: Stack) -> None:
    stack.fake.tokens[TOKEN].buckets = {"in.c-other"}
    with pytest.raises(TokenRefused, match=r"lacks access to bucket in\.c-main"):
        stack.connector().extract(orders(), stack.writer)


def test_an_unset_token_variable_is_named(stack: Stack) -> None:
    stack.env.delenv(ENV)
    with pytest.raises(TokenRefused, match=ENV):
        stack.connector().list_tables()


def test_a_failed_job_is_terminal_with_keboolas_message(stack: Stack) -> None:
    stack.fake.job_errors.append("Column amount cannot be converted to DOUBLE")
    with pytest.raises(TerminalSyncError, match="cannot be converted") as caught:
        stack.connector(file_type="csv").extract(orders(), stack.writer)
    assert not caught.value.transient


def test_a_job_created_but_not_yet_waiting_is_polled(stack: Stack) -> None:
    """The reference's job answers also show ``created``: the export was failed as a job
    in an unknown state."""
    stack.fake.first_status = "created"
    assert stack.connector(file_type="csv").extract(orders(), stack.writer).rows == len(ROWS)


@pytest.mark.parametrize("status", ["cancelled", "terminated"])
def test_a_stopped_job_is_retried_with_a_new_export(stack: Stack, status: str) -> None:
    api, _ = client(stack)
    exporter = Exporter(api, first_poll=0.01)
    with pytest.raises(TransientSyncError, match=f"was {status}") as caught:
        exporter.wait_for({"id": 7, "status": status}, "in.c-main.orders")
    assert "new export" in (caught.value.hint or "")


def test_a_job_past_its_timeout_is_transient(stack: Stack) -> None:
    stack.fake.polls_to_finish = 10**9
    api, slept = client(stack)
    ticks = iter(range(0, 10**6, 10))
    exporter = Exporter(api, job_timeout=60, first_poll=1, clock=lambda: float(next(ticks)))
    with pytest.raises(TransientSyncError, match="did not finish within 60 s"):
        exporter.export("in.c-main.orders", ExportParams(columns=("id",)), stack.root / "x")
    assert slept and len(stack.fake.calls("/jobs/")) == len(slept) + 1


def test_slice_downloads_are_retried_and_an_expired_url_is_transient(stack: Stack) -> None:
    stack.fake.fail(r"_0_0_1\.csv\.gz$", 503, retry_after="0")
    connector = stack.connector(file_type="csv")
    assert connector.extract(orders(), stack.writer).rows == len(ROWS)
    stack.fake.fail(r"_0_0_2\.csv\.gz$", 403, message="Request has expired")
    with pytest.raises(TransientSyncError, match=r"failed \(403\)") as caught:
        connector.extract(orders(), stack.writer)
    assert "expired" in (caught.value.hint or "") and "Signature" not in caught.value.message
    assert len(stack.rows("orders")) == len(ROWS)  # the last good data


def test_a_redirect_loop_on_a_signed_url_is_a_typed_transient_failure(stack: Stack) -> None:
    """A request failure that is not a network error (a redirect loop; a body that does
    not decode) escaped untyped: tagged as any download failure now, signature unsaid."""
    api, slept = client(stack, attempts=2)
    url = f"{stack.server.url}/kbc-sapi-files/exp-15/1/x.csv.gz?X-Amz-Signature=secret"
    stack.fake.fail("/kbc-sapi-files/", 307, headers={"Location": url}, times=10**6)
    for fetch in (lambda: api.download(url, stack.root / "x"), lambda: api.fetch_json(url)):
        with pytest.raises(TransientSyncError, match="TooManyRedirects") as caught:
            fetch()
        assert "secret" not in caught.value.message
    assert slept == [0.5, 0.5]


def test_signed_file_urls_never_reach_the_log(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx logs each request's URL at INFO: a signed URL's signature (a credential for
    hours) reached any log kept at INFO."""
    with caplog.at_level("INFO", logger="httpx"):
        stack.connector(file_type="csv").extract(orders(), stack.writer)
    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("/kbc-sapi-files/" in line for line in logged)
    assert not any("Signature" in line or TOKEN in line for line in logged)


def test_the_token_never_reaches_disk(stack: Stack) -> None:
    stack.connector().extract(incremental(), stack.writer)
    for path in stack.root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


# --- the pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        ("country = 'US'", [{"column": "country", "operator": "eq", "values": ["US"]}]),
        (
            "country NOT IN ('US', 'CA')",
            [{"column": "country", "operator": "ne", "values": ["US", "CA"]}],
        ),
        (
            "10 <= amount",
            [{"column": "amount", "operator": "ge", "values": ["10"], "dataType": "DOUBLE"}],
        ),
        (
            "amount < -1.5",
            [{"column": "amount", "operator": "lt", "values": ["-1.5"], "dataType": "DOUBLE"}],
        ),
        ("country = 'US' OR amount > 1", []),
        ("lower(country) = 'us'", []),
        ("country > 'M'", []),  # Keboola would compare text; kept local
        ("nope = 1", []),
        (None, []),
    ],
)
def test_where_filters_translate_what_keboola_can_do(
    predicate: str | None, expected: list[dict[str, Any]]
) -> None:
    assert where_filters(predicate, {"country", "amount"}) == expected


def test_signature_v4_matches_the_aws_documented_example() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-amz-date": "20130524T000000Z",
    }
    authorization = sign_v4(
        "GET", "/test.txt", "", headers, access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region="us-east-1",
        payload_hash=headers["x-amz-content-sha256"],
    )  # fmt: skip
    assert authorization.endswith(
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_manifest_entries_resolve_to_their_stores() -> None:
    info = {
        "region": "eu-central-1",
        "credentials": {"AccessKeyId": "AK", "SecretAccessKey": "SK", "SessionToken": "ST"},
        "gcsCredentials": {"access_token": "ya29.x"},
        "absCredentials": {
            "SASConnectionString": "BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=1&sig=x"
        },
    }
    url, headers = resolve("s3://kbc-files/exp-15/1.csv.gz_0_0_1.csv.gz", info)
    assert url == "https://kbc-files.s3.eu-central-1.amazonaws.com/exp-15/1.csv.gz_0_0_1.csv.gz"
    assert headers["x-amz-security-token"] == "ST" and "Credential=AK/" in headers["authorization"]
    assert resolve("gs://b/k/1.gz", info) == (
        "https://storage.googleapis.com/b/k/1.gz",
        {"Authorization": "Bearer ya29.x"},
    )
    assert (
        resolve("azure://a.blob.core.windows.net/c/1.gz", info)[0]
        == "https://a.blob.core.windows.net/c/1.gz?sv=1&sig=x"
    )
    assert resolve("https://files.example.com/1.gz?sig=1", {}) == (
        "https://files.example.com/1.gz?sig=1",
        {},
    )
    with pytest.raises(TerminalSyncError):
        resolve("ftp://x/1.gz", info)
    with pytest.raises(TerminalSyncError):
        resolve("s3://b/k", {})


def test_a_file_not_yet_visible_after_its_job_is_waited_for(stack: Stack) -> None:
    """A 404 on the export's file (the job named it; the files API did not show it yet)
    was a terminal "no such object": the sync failed for good on a passing delay. It is
    asked for again; a file that never shows is transient (a new export)."""
    slept: list[float] = []
    connector = stack.connector(file_type="csv")
    connector.client.sleep = slept.append
    stack.fake.fail(r"/v2/storage/files/\d+$", 404, times=2, message="File not found")
    assert connector.extract(orders(), stack.writer).rows == len(ROWS)
    assert [s for s in slept if s >= 0.5] == [0.5, 1.0]  # the backoff, not the polls
    stack.fake.fail(r"/v2/storage/files/\d+$", 404, times=100, message="File not found")
    with pytest.raises(TransientSyncError, match="not found after 5 attempts"):
        connector.extract(orders(), stack.writer)
    stack.fake.failures.clear()


def test_a_job_not_yet_visible_to_its_poll_is_asked_for_again(stack: Stack) -> None:
    """A 404 polling the job the export has just created (some stacks do not show a new
    job at once) ended the sync at once as a terminal "no such object". A short run of
    404s is waited out with backoff; a job that never shows is a typed transient failure
    naming the job and what happens next (a new export)."""
    slept: list[float] = []
    connector = stack.connector(file_type="csv")
    connector.client.sleep = slept.append
    stack.fake.job_not_found(times=3)
    assert connector.extract(orders(), stack.writer).rows == len(ROWS)
    assert [s for s in slept if s >= 0.5] == [0.5, 1.0, 2.0]  # the backoff, not the polls
    stack.fake.job_not_found(times=100)
    with pytest.raises(JobNotFound, match=r"job \d+ .*not found after 5 attempts") as caught:
        connector.extract(orders(), stack.writer)
    assert caught.value.transient and "new export" in (caught.value.hint or "")
    assert caught.value.details["job"] == max(stack.fake.jobs)
    stack.fake.failures.clear()


@pytest.mark.parametrize(
    ("encoded", "in_transit", "file_type"),
    [(True, False, "csv"), (False, True, "csv"), (False, True, "parquet")],
)
def test_slices_sent_with_content_encoding_land_compressed(
    stack: Stack, tmp_path: Path, encoded: bool, in_transit: bool, file_type: str
) -> None:
    """A .csv.gz slice stored with Content-Encoding: gzip (S3 metadata) was decoded on
    the way in: the whole CSV landed on disk, several times the size. What lands is the
    object as stored (gzip CSV, read as it is); a layer over a compressed object is
    undone (a parquet must start with PAR1)."""
    stack.fake.gzip_encoded, stack.fake.gzip_in_transit = encoded, in_transit
    exporter = stack.connector(file_type=file_type).exporter()
    params = ExportParams(columns=tuple(COLUMNS), file_type=file_type)
    exported = exporter.export("in.c-main.orders", params, tmp_path / "export")
    assert exported.file_type == file_type and exported.slices
    for path in exported.slices:
        head = path.read_bytes()[:4]
        assert head == b"PAR1" if file_type == "parquet" else head[:2] == b"\x1f\x8b", head
        if file_type == "csv":  # one gzip layer: whole CSV rows inside
            assert b"," in gzip.decompress(path.read_bytes())
