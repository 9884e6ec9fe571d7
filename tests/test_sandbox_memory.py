"""Memory a query may take: the sandbox alone (no sqlglot policy) must keep a query's
memory near its limits. DuckDB's ``memory_limit`` does not bound the strings and lists a
function builds, so those functions are wrapped (``value_too_large``), and the answer is
read in batches, stopping at the byte cap, so a huge answer is never built whole.

The resource assertions measure this process's peak resident memory (``VmHWM``, reset
through ``/proc/self/clear_refs`` before each query) against what it held before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
import sqlglot

from agnes_mcp.rails import policy
from agnes_mcp.rails.refusals import FunctionNotAllowed, QueryRefused, QueryTimeout, SqlTooLarge
from agnes_mcp.rails.sandbox import Limits, MemoryLimitExceeded, RunResult, Sandbox
from agnes_mcp.rails.value_guards import MAX_VALUE_BYTES, ValueTooLarge
from tests.conftest import DemoServer, local_table, running_demo
from tests.rails_corpus import CUT_BYTES, CUT_ROWS, RESOURCE_CASES

GiB = 1024**3
MiB = 1024**2
# The production defaults: a 2 GB sandbox, two threads, a 256 MiB answer.
LIMITS = Limits(rows=100_000, bytes=256 * MiB, timeout_seconds=60)


def _status(field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert found is not None, f"no {field} in /proc/self/status"
    return int(found[1]) * 1024


ROWS = 200_000
# t of rows_sandbox: (id, k = id % 7, s = 'item <id>'), as a view for a plain DuckDB too
ROWS_VIEW = f"SELECT range AS id, range % 7 AS k, 'item ' || range AS s FROM range({ROWS})"


def rows_sandbox(folder: Path) -> Sandbox:
    """A sandbox (2 GB, 2 threads) over table ``t``: :data:`ROWS_VIEW` written as parquet
    in ``folder``."""
    data = folder / "t.parquet"
    with duckdb.connect() as con:
        con.execute(f"COPY ({ROWS_VIEW}) TO '{data}'")
    return Sandbox([local_table("t", data)], memory_limit="2GB", threads=2)


def peak_growth(call: Callable[[], object]) -> tuple[int, object]:
    """Bytes the process's peak resident memory rose above what it held before ``call``
    (and what ``call`` returned or raised)."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    before = _status("VmRSS")
    try:
        outcome: object = call()
    except QueryRefused as refusal:
        outcome = refusal
    return _status("VmHWM") - before, outcome


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data = tmp_path_factory.mktemp("memory") / "t.parquet"
    duckdb.sql(f"COPY (SELECT range AS id, 'word' AS s FROM range(1000)) TO '{data}'")
    table = local_table("t", data)
    box = Sandbox([table], memory_limit="2GB", threads=2)
    yield box
    box.close()


@pytest.mark.parametrize(
    "sql",
    [
        # 3 GB of strings in one vector (it reached 4.4 GB against a 2 GB limit)
        "SELECT sum(length(repeat('x', 1000000000 + i))) FROM range(3) t(i)",
        # 1,001 rows of 1 MB built as one 1 GB vector before the byte cap could cut it
        "SELECT repeat('x', 1000000) FROM range(1001)",
    ],
)
def test_values_too_large_are_refused_before_they_are_built(sandbox: Sandbox, sql: str) -> None:
    growth, outcome = peak_growth(lambda: sandbox.run(sql, LIMITS))
    assert isinstance(outcome, ValueTooLarge), outcome
    assert outcome.code == "value_too_large" and outcome.status == 400
    assert outcome.details["function"] == "repeat"
    assert outcome.details["bytes"] > MAX_VALUE_BYTES == outcome.details["limit_bytes"]
    assert growth < 1 * GiB, f"grew {growth / MiB:.0f} MiB"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT list_aggr(range(1000), 'string_agg', '" + "x" * 1000 + "') FROM range(3)",
        "SELECT range(1000).list_aggregate('STRING_AGG', '" + "x" * 1000 + "')",
        "SELECT main.array_aggr(range(1000), 'group_concat', '" + "x" * 1000 + "')",
        "SELECT aggregate(range(1000), 'listagg', repeat('x', 1000))",
    ],
)
def test_a_list_aggregate_cannot_repeat_a_long_separator(sandbox: Sandbox, sql: str) -> None:
    """list_aggr(l, 'string_agg', sep) is what array_to_string(l, sep) runs, past the
    wrapper that counts its size: a long separator (or one not written as a literal) is
    refused, however the call is spelt."""
    growth, outcome = peak_growth(lambda: sandbox.run(sql, LIMITS))
    assert isinstance(outcome, ValueTooLarge), outcome
    assert outcome.details["function"] in ("list_aggr", "list_aggregate", "array_aggr", "aggregate")
    assert "array_to_string" in (outcome.hint or "")
    assert growth < 256 * MiB, f"grew {growth / MiB:.0f} MiB"


def test_a_query_cannot_forge_the_value_refusal(sandbox: Sandbox) -> None:
    """Only the wrappers raise ``value_too_large``: a query's own error() with the same
    words stays a plain failure (the wrappers' text carries a secret of the process)."""
    with pytest.raises(QueryRefused) as caught:
        sandbox.run("SELECT error('agnes_value_too_large|repeat|99') AS x", LIMITS)
    assert not isinstance(caught.value, ValueTooLarge)
    assert caught.value.code != "value_too_large"


def test_the_byte_cap_cuts_while_the_answer_is_read(sandbox: Sandbox) -> None:
    """A 6 GB answer of values under the bound: cut at 256 MiB, never built whole."""
    sql = f"SELECT repeat('x', {MAX_VALUE_BYTES - 1000}) AS s FROM range(100000)"
    growth, outcome = peak_growth(lambda: sandbox.run(sql, LIMITS))
    assert isinstance(outcome, RunResult), outcome
    assert outcome.truncated and outcome.reason == "bytes"
    assert 0 < outcome.table.num_rows < 100_000
    assert outcome.table.nbytes <= LIMITS.bytes
    assert growth < 1 * GiB, f"grew {growth / MiB:.0f} MiB"


def test_the_row_cap_still_applies(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "SELECT * FROM range(10000000)", Limits(rows=5000, bytes=GiB, timeout_seconds=60)
    )
    assert result.truncated and result.reason == "rows" and result.table.num_rows == 5000
    whole = sandbox.run("SELECT id FROM t", LIMITS)
    assert not whole.truncated and whole.table.num_rows == 1000


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT repeat('ab', 3), repeat('ab'::BLOB, 3), repeat([1, 2], 2), repeat(NULL, 2)",
        "SELECT repeat('x', 0), repeat('x', -1), 'x'.repeat(3), repeat(s, 2) FROM t LIMIT 2",
        "SELECT lpad('7', 3, '0'), rpad('7', 3, '0'), lpad('abc', 2, '0')",
        "SELECT range(5), range(1, 4), range(0, 10, 3), range(10, 0, -3)",
        "SELECT generate_series(5), generate_series(1, 4), generate_series(0, 10, 3)",
        "SELECT generate_series(DATE '2020-01-01', DATE '2020-01-05', INTERVAL 1 DAY)",
        "SELECT range(TIMESTAMP '2020-01-01', TIMESTAMP '2020-01-02', INTERVAL 6 HOUR)",
        "SELECT range(TIMESTAMPTZ '2020-01-01', TIMESTAMPTZ '2020-01-02', INTERVAL 6 HOUR)",
        "SELECT list_resize([1, 2], 4), list_resize([1], 3, 9), array_resize([1], 2)",
        "SELECT bitstring('101', 8), equi_width_bins(0, 10, 2, false)",
        "SELECT replace('abc', 'b', 'xx'), regexp_replace('abcb', 'b', '<\\0>', 'g')",
        "SELECT array_to_string([1, 2, 3], ', '), printf('%5.2f|%-4s|', 3.14159, 'ab')",
        "SELECT list_aggr([1, 2, 3], 'string_agg', ' | '), list_aggr(['a', 'b'], 'listagg')",
        "SELECT format('{:>6}|{:.3f}', 'x', 2.5), unnest(range(3))",
        "SELECT * FROM range(3)",
        "SELECT count(*) FROM generate_series(1, 100000)",
        "SELECT max(length(repeat(s, 100))) FROM t",
        "SELECT damerau_levenshtein('hello', 'yellow'), damerau_levenshtein(s, 'wrod') FROM t",
        "SELECT damerau_levenshtein(repeat('ab', 700), repeat('ba', 700))",
        "SELECT NULL::FLOAT[1536] IS NULL, [1.5, 2]::DOUBLE[2], NULL::INT ARRAY[3]",
        "SELECT CAST(NULL AS STRUCT(a INT[300][300], m MAP(INT, INT[10]))) IS NULL AS n",
        "SELECT [NULL::BIGINT[1000], NULL], [1, 2]::BIGINT[], NULL::INT[][3], x[1] FROM t, "
        "(SELECT [1, 2] AS x)",
    ],
)
def test_the_wrapped_functions_answer_as_duckdb_does(sandbox: Sandbox, sql: str) -> None:
    plain = duckdb.connect()
    plain.execute("CREATE VIEW t AS SELECT range AS id, 'word' AS s FROM range(1000)")
    relation = plain.sql(sql)
    if any(str(t) == "BIT" for t in relation.types):  # the sandbox gives BIT as DuckDB prints it
        got = [tuple(r.values()) for r in sandbox.run(sql, LIMITS).table.to_pylist()]
        assert got == relation.fetchall()
        return
    assert sandbox.run(sql, LIMITS).table.to_pylist() == relation.to_arrow_table().to_pylist()


@pytest.mark.parametrize(
    ("sql", "refusal", "function"),
    [
        ("SELECT lpad('x', 100000000, 'y')", ValueTooLarge, "lpad"),
        ("SELECT len(range(100000000))", ValueTooLarge, "range"),
        ("SELECT unnest(generate_series(1, 50000000))", ValueTooLarge, "generate_series"),
        (
            "SELECT len(range(TIMESTAMP '2000-01-01', TIMESTAMP '2001-01-01', INTERVAL 1 SECOND))",
            ValueTooLarge,
            "range",
        ),
        ("SELECT len(list_resize([1], 30000000))", ValueTooLarge, "list_resize"),
        ("SELECT len(repeat([1], 30000000))", ValueTooLarge, "repeat"),
        ("SELECT 'x'.repeat(1000000000)", ValueTooLarge, "repeat"),
        ("SELECT repeat(repeat('x', 60000), 60000)", ValueTooLarge, "repeat"),
        ("SELECT max(length(repeat(s, 1000000))) FROM t", ValueTooLarge, "repeat"),
        ("SELECT repeat('x', i * 1000) FROM range(100) t(i)", ValueTooLarge, "repeat"),
        ("SELECT replace(repeat('x', 10000), 'x', repeat('y', 1000))", ValueTooLarge, "replace"),
        (
            "SELECT regexp_replace(repeat('x', 60000), '', 'yy', 'g')",
            ValueTooLarge,
            "regexp_replace",
        ),
        ("SELECT bitstring('1', 300000000)", ValueTooLarge, "bitstring"),
        ("SELECT printf('%1000000000d', 1)", ValueTooLarge, "printf"),
        ("SELECT printf('%.*f', 1000000000, 1.5)", ValueTooLarge, "printf"),
        ("SELECT format('{:>1000000000}', 1)", ValueTooLarge, "format"),
        ("SELECT format('{:>{}}', 1, 1000000000)", ValueTooLarge, "format"),
        ("SELECT printf(f, 1) FROM (SELECT '%1000000000d' AS f)", ValueTooLarge, "printf"),
        ("SELECT f.printf(1) FROM (SELECT '%1000000000d' AS f)", ValueTooLarge, "printf"),
        ("SELECT system.main.repeat('x', 1000000000)", FunctionNotAllowed, "repeat"),
        ("SELECT system.repeat('x', 1000000000)", FunctionNotAllowed, "repeat"),
        ("SELECT pg_catalog.lpad('x', 1000000000, 'y')", FunctionNotAllowed, "lpad"),
        ("SELECT \"SYSTEM\".Main.Repeat('x', 1000000000)", FunctionNotAllowed, "repeat"),
        ("SELECT PRINTF('%1000000000d', 1)", ValueTooLarge, "printf"),
        # working memory: a matrix of (len + 2)^2 8-byte cells, 1.2 GB here
        (
            "SELECT damerau_levenshtein(repeat('a', 12000), repeat('b', 12000))",
            ValueTooLarge,
            "damerau_levenshtein",
        ),
        (
            "SELECT repeat(s, 3000).damerau_levenshtein(repeat(s, 3000)) FROM t",
            ValueTooLarge,
            "damerau_levenshtein",
        ),
    ],
)
def test_every_way_to_a_huge_value_is_refused(
    sandbox: Sandbox, sql: str, refusal: type[QueryRefused], function: str
) -> None:
    growth, outcome = peak_growth(lambda: sandbox.run(sql, LIMITS))
    assert isinstance(outcome, refusal), outcome
    if refusal is ValueTooLarge:
        assert outcome.details["function"] == function
    assert growth < 1 * GiB, f"grew {growth / MiB:.0f} MiB"


def test_memory_duckdb_tracks_is_a_typed_refusal(tmp_path: Path) -> None:
    small = Sandbox([], memory_limit="64MB", threads=1)
    try:
        with pytest.raises(MemoryLimitExceeded) as refused:
            small.run(
                "SELECT length(string_agg(repeat('x', 1000), ',')) FROM range(1000000)", LIMITS
            )
        assert refused.value.code == "memory_limit_exceeded"
        assert refused.value.details["limit_name"] == "query_memory_limit"
    finally:
        small.close()


def test_a_timeout_while_the_answer_streams_is_typed(sandbox: Sandbox) -> None:
    with pytest.raises(QueryTimeout):
        sandbox.run(
            "SELECT range FROM range(100000000000) WHERE range % 1000000007 = 5",
            Limits(rows=100, bytes=GiB, timeout_seconds=0.3),
        )


# --- the resource corpus: through the whole service, and through the sandbox alone ----------


@pytest.fixture(scope="module")
def resource_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with running_demo(
        tmp_path_factory.mktemp("resource-demo"),
        query_memory_limit="256MB",
        scan_caps={"max_result_bytes": 32 * MiB},
    ) as demo:
        yield demo


def _timeout_for(expected: str) -> float:
    """A short timeout where it is the limit that must stop the query (each needs far more
    work than an hour of this machine), a generous one elsewhere; a cut answer's total is
    counted within its timeout, so those get a short one too."""
    return {"query_timeout": 1.0, CUT_ROWS: 2.0}.get(expected, 60.0)


@pytest.mark.parametrize("walls", ["policy and sandbox", "sandbox alone"])
@pytest.mark.parametrize(
    ("sql", "expected"), RESOURCE_CASES, ids=[f"{i:02d}" for i in range(len(RESOURCE_CASES))]
)
def test_resource_corpus(
    resource_demo: DemoServer,
    monkeypatch: pytest.MonkeyPatch,
    walls: str,
    sql: str,
    expected: str,
) -> None:
    services = resource_demo.live.services
    analyst = services.tokens.authenticate(resource_demo.analyst_token)
    if walls == "sandbox alone":

        def permissive(text: str, dialect: str = policy.DUCKDB) -> policy.ParsedQuery:
            return policy.ParsedQuery(
                sql=text, dialect=dialect, tree=sqlglot.parse_one("SELECT 1"), refs=[]
            )

        monkeypatch.setattr(policy, "parse", permissive)
        monkeypatch.setattr("agnes_mcp.rails.checked_parse.cross_check", lambda text, names: None)
    monkeypatch.setattr(services.settings, "query_timeout_seconds", _timeout_for(expected))
    growth, outcome = peak_growth(lambda: services.query.run(analyst, sql, mode="local"))
    if expected in (CUT_ROWS, CUT_BYTES):
        assert not isinstance(outcome, QueryRefused), outcome
        assert outcome.truncated and f"cut:{outcome.reason}" == expected  # type: ignore[attr-defined]
    else:
        assert isinstance(outcome, QueryRefused) and outcome.code == expected, outcome
    assert growth < 1 * GiB, f"grew {growth / MiB:.0f} MiB"


def test_the_resource_corpus_is_a_family() -> None:
    assert len(RESOURCE_CASES) >= 20
    kinds = {expected for _, expected in RESOURCE_CASES}
    assert kinds == {
        "sql_too_large",
        "value_too_large",
        "memory_limit_exceeded",
        "query_timeout",
        CUT_ROWS,
        CUT_BYTES,
    }


def test_a_query_too_deep_to_check_is_refused_not_a_crash(sandbox: Sandbox) -> None:
    """DuckDB parses 600 nested additions; the parse tree the sandbox checks printf on is
    too deep for Python's JSON reader, so it refuses it (typed) rather than failing."""
    with pytest.raises(SqlTooLarge):
        sandbox.run("SELECT printf('%d', " + "1 + " * 600 + "1)", LIMITS)
    deep = sandbox.run("SELECT printf('%d', " + "1 + " * 100 + "1) AS n", LIMITS)
    assert deep.table.to_pylist() == [{"n": "101"}]


@pytest.mark.parametrize(
    ("sql", "elements"),
    [
        ("SELECT NULL::BIGINT[4000][1000] IS NULL", 4_000_000),
        ("SELECT CAST(NULL AS INT ARRAY[400])::INT[400][1000] IS NULL", 400_400),
        ("SELECT NULL::STRUCT(a INT[1000], b MAP(INT, VARCHAR[1000][100])) IS NULL", 101_001),
        ("SELECT [" + ", ".join(["NULL::SMALLINT[100000]"] * 20) + "]", 2_000_000),
        ("SELECT TRY_CAST(NULL AS UNION(a INT[100000], b INT[1])) IS NULL", 100_001),
    ],
)
def test_a_type_declaring_too_many_elements_is_refused(
    sandbox: Sandbox, sql: str, elements: int
) -> None:
    """A constant of a fixed-size ARRAY type is built as one DuckDB Value an element,
    outside memory_limit (NULL::BIGINT[10000][10000] would take ~25 GB): the elements the
    query's types declare are counted before it runs."""
    growth, outcome = peak_growth(lambda: sandbox.run(sql, LIMITS))
    assert isinstance(outcome, ValueTooLarge), outcome
    assert outcome.details == {"elements": elements, "limit_elements": 100_000}
    assert "ARRAY" in outcome.message and outcome.hint
    assert growth < 256 * MiB, f"grew {growth / MiB:.0f} MiB"
