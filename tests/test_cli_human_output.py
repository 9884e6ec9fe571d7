"""What the CLI prints for people: counts with thousands separators, sizes in human units;
JSON keeps the plain numbers. And listings that a limit cuts say so."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from cli import exit_codes
from cli.output import _number, size
from tests.cli_harness import run
from tests.conftest import DemoServer

HUMAN_SIZE = r"\d+(\.\d)? (B|KiB|MiB|GiB|TiB)"


def test_a_listing_fraction_reads_for_people() -> None:
    assert [_number(v) for v in (8.186104998458177, 2.0, 0.5, 1234567.8912, 0.0, 0.00012345)] == [
        "8.186",
        "2",
        "0.5",
        "1,234,567.891",
        "0",
        "0.000123",
    ]


def test_size_is_the_mcp_tools_format() -> None:
    assert [size(n) for n in (None, 0, 1023, 1024, 1536, 5 * 1024**3, 3 * 1024**5)] == [
        "?",
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 GiB",
        "3072.0 TiB",
    ]


def test_disk_info_in_human_units(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "disk-info", "--json")
    info = json.loads(out)
    assert code == exit_codes.OK and isinstance(info["free_bytes"], int)  # JSON: plain bytes
    code, out, _ = run(capsys, "disk-info")
    assert code == exit_codes.OK
    assert re.search(rf"data[\s│]+{HUMAN_SIZE}", out) and re.search(rf"free[\s│]+{HUMAN_SIZE}", out)
    assert size(info["data_bytes"]) in out and size(info["free_bytes"]) in out
    assert str(info["free_bytes"]) not in out  # not the raw byte count


def test_counts_have_thousands_separators(
    workspace: Path, demo_server: DemoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "catalog", "--json")
    orders = next(t for t in json.loads(out)["tables"] if t["id"] == "orders")
    assert orders["rows"] >= 1000  # JSON: plain numbers
    code, out, _ = run(capsys, "catalog")
    assert f"{orders['rows']:,}" in out and f" {orders['rows']} " not in out
    admin = ["--server-url", demo_server.live.base_url, "--token", demo_server.admin_token]
    code, out, _ = run(capsys, "admin", "list-tables", *admin)
    assert code == exit_codes.OK and f"{orders['rows']:,}" in out
    code, out, _ = run(capsys, "pull")  # nothing to fetch: 0 bytes, said as such
    assert code == exit_codes.OK and "downloaded 0 files (0 B)" in out, out


def test_sync_history_says_when_its_limit_cut_the_list(
    demo_server: DemoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = ["--server-url", demo_server.live.base_url, "--token", demo_server.admin_token]
    code, table, _ = run(capsys, "admin", "sync-history", "--limit", "2", *admin)
    assert code == exit_codes.OK
    assert "newest 2 runs" in table and "--limit" in table
    code, out, _ = run(capsys, "admin", "sync-history", "--limit", "2", "--json", *admin)
    data = json.loads(out)
    assert len(data["runs"]) == 2 and data["limit"] == 2 and data["may_have_more"] is True
    for run_ in data["runs"]:  # JSON keeps the measured milliseconds; the table rounds them
        measured = run_["duration_ms"]
        assert _number(measured) in table
        if str(measured) != _number(measured):
            assert str(measured) not in table
    code, out, _ = run(capsys, "admin", "sync-history", "--limit", "1000", "--json", *admin)
    assert json.loads(out)["may_have_more"] is False


def test_query_tables_print_values_as_they_are_and_null_as_null(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NULL and the string '-' used to print alike ('-'); a boolean as yes/no, a list's
    NULL as '-', a string that looks like a time cut to the minute."""
    from cli.output import NULL, _value_cell

    sql = (
        "SELECT NULL AS n, '-' AS dash, true AS b, [1, NULL] AS l, "
        "'2026-01-01T10:11:12' AS t, 1234567 AS i"
    )
    code, out, _ = run(capsys, "query", sql)
    assert code == exit_codes.OK
    row = next(line for line in out.splitlines() if "2026" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells == [NULL, "-", "true", "[1, NULL]", "2026-01-01T10:11:12", "1234567"]
    assert NULL == "NULL" and _value_cell(None).style == "dim"  # set apart on a terminal
    assert _value_cell("NULL").style == "" and str(_value_cell("-")) == "-"
    code, out, _ = run(capsys, "query", sql, "--format", "csv")
    assert out.splitlines()[1].startswith(",-,")  # CSV: NULL is the empty field
    # the rest as the table prints it (a boolean read 'True', as Python writes it)
    assert out.splitlines()[1] == ',-,true,"[1, NULL]",2026-01-01T10:11:12,1234567'


def test_query_csv_writes_an_empty_string_apart_from_null(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty string and a NULL were both written as an empty field, so a CSV reader
    got NULL for every empty string. An empty string is now ``""``, a NULL nothing, as
    DuckDB's own CSV writer writes them; every other field reads back as it was."""
    import polars as pl

    sql = (
        "SELECT ''::VARCHAR AS empty, NULL::VARCHAR AS nothing, 'a,\"b\"' AS \"odd, name\", "
        "'two' || chr(10) || 'lines' AS lines, ' x ' AS blanks"
    )
    code, out, _ = run(capsys, "query", sql, "--format", "csv")
    assert code == exit_codes.OK
    assert out == ('empty,nothing,"odd, name",lines,blanks\r\n"",,"a,""b""","two\nlines", x \r\n')
    header, row = csv.reader(out.splitlines(keepends=True))
    assert header == ["empty", "nothing", "odd, name", "lines", "blanks"]
    assert row == ["", "", 'a,"b"', "two\nlines", " x "]
    assert pl.read_csv(out.encode()).row(0) == ("", None, 'a,"b"', "two\nlines", " x ")


@pytest.mark.parametrize("form", ["table", "json", "csv"])
def test_an_empty_answer_with_a_union_column_prints_in_every_format(
    workspace: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    """No rows of a UNION column: Arrow cannot build the empty column combine_chunks()
    asks for, and the command died with a traceback (ArrowNotImplementedError:
    sparse_union) instead of printing the empty answer."""
    sql = "SELECT union_value(k := 1) AS u, [union_value(k := 1)] AS l, 1 AS n WHERE false"
    code, out, err = run(capsys, "query", sql, "--format", form)
    assert code == exit_codes.OK, err
    assert "0 rows" in err or form == "json"
    if form == "json":
        assert json.loads(out)["rows"] == [] and json.loads(out)["row_count"] == 0
    if form == "csv":
        assert out == "u,l,n\r\n"


def test_counts_agree_with_their_nouns() -> None:
    from cli.output import counted

    assert [counted(n, "metric") for n in (0, 1, 2, 1000)] == [
        "0 metrics",
        "1 metric",
        "2 metrics",
        "1,000 metrics",
    ]
    assert counted(1, "entry", "entries") == "1 entry" and counted(3, "entry", "entries") == (
        "3 entries"
    )


COUNTED_NOUNS = re.compile(
    r"\{[^{}\n]*\} (metrics|tables|files|rows|snapshots|steps|plugins|runs|bytes|characters"
    r"|grants|users|groups|tokens)\b|\w\(s\)"
)


def test_the_cli_never_prints_a_count_with_a_fixed_plural() -> None:
    """'1 metrics.', 'plugin(s)': a count the CLI prints takes its noun through counted()."""
    cli = Path(__file__).parent.parent / "cli"
    found = [
        f"{path.relative_to(cli)}:{number}: {line.strip()}"
        for path in sorted(cli.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if COUNTED_NOUNS.search(line) and "add_argument" not in line and "help=" not in line
    ]
    assert found == []


def test_one_metric_is_one_metric(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for search, said in (("monthly recurring", "1 metric."), ("recurring", "2 metrics.")):
        code, out, _ = run(capsys, "metrics", "list", "--search", search)
        assert code == exit_codes.OK and f"\n{said} A definition" in out, out


def test_times_and_decimals_print_as_duckdb_writes_them(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TIMESTAMP printed in JSON's ISO form (2024-01-01T10:11:12.120000), a TIMESTAMPTZ
    with +00:00 and a DECIMAL(10,2) 1.10 as 1.1: the table and CSV now write them as
    DuckDB does; JSON keeps its forms."""
    sql = (
        "SELECT TIMESTAMP '2024-01-01 10:11:12.120' AS ts, TIMESTAMPTZ '2024-01-01 10:11:12+00' "
        "AS tz, 1.10::DECIMAL(10,2) AS price, 123456789012345678901234567890.10::DECIMAL(38,2) "
        "AS big, [5::DECIMAL(3,1)] AS l"
    )
    written = ["2024-01-01 10:11:12.12", "2024-01-01 10:11:12+00", "1.10"]
    written += ["123456789012345678901234567890.10", "[5.0]"]
    code, out, _ = run(capsys, "query", sql)
    row = next(line for line in out.splitlines() if "2024" in line)
    assert code == exit_codes.OK and [c.strip() for c in row.strip("│ ").split("│")] == written
    code, out, _ = run(capsys, "query", sql, "--format", "csv")
    assert next(csv.reader(out.splitlines()[1:])) == written
    code, out, _ = run(capsys, "query", sql, "--json")
    assert json.loads(out)["rows"][0][:3] == [
        "2024-01-01T10:11:12.120000",
        "2024-01-01T10:11:12+00:00",
        1.1,
    ]


def test_nested_values_print_as_duckdb_writes_them(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A struct holding a timestamp or a decimal printed JSON's forms inside it
    ({'t': 2024-01-01T10:11:12.120000, 'd': 1.1}), a map printed as a list of pairs,
    a list of texts lost its quoting (['a,b', 'c'] read as three texts) and a FLOAT
    0.1 as 0.10000000149011612: the table and CSV now write what DuckDB's CSV does."""
    sql = (
        "SELECT {'t': TIMESTAMP '2024-01-01 10:11:12.120', 'd': 1.10::DECIMAL(10,2)} AS s, "
        "MAP {'a': TIMESTAMP '2024-01-01 10:11:12'} AS m, ['a,b', 'c', 'NULL', NULL] AS l, "
        "0.1::FLOAT AS f, {'a': [1.5::DECIMAL(4,2)]} AS sd"
    )
    import duckdb

    path = workspace / "duckdb.csv"
    duckdb.sql(f"COPY ({sql}) TO '{path}' (HEADER)")
    duckdb_wrote = next(csv.reader(path.read_text().splitlines()[1:]))
    assert duckdb_wrote[2] == "['a,b', c, 'NULL', NULL]"  # DuckDB's own form, checked
    code, out, _ = run(capsys, "query", sql, "--format", "csv")
    assert code == exit_codes.OK and next(csv.reader(out.splitlines()[1:])) == duckdb_wrote
    code, out, _ = run(capsys, "query", sql)
    row = next(line for line in out.splitlines() if "2024" in line)
    assert [c.strip() for c in row.strip("│ ").split("│")] == duckdb_wrote
    code, out, _ = run(capsys, "query", sql, "--json")
    assert json.loads(out)["rows"][0][:3] == [
        {"t": "2024-01-01T10:11:12.120000", "d": 1.1},
        [["a", "2024-01-01T10:11:12"]],
        ["a,b", "c", "NULL", None],
    ]
