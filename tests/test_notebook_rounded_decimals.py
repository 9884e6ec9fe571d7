"""``.df()`` gives DECIMALs as float64, as DuckDB's own ``.df()`` does. A value with more
digits than a float64 holds was rounded there silently (``12345678901234567.89`` became
``12345678901234568.0``, a DECIMAL(38, 9) total lost its cents): now it warns, naming the
columns, and the frame's ``attrs`` say so too; exact ones pass in silence."""

from __future__ import annotations

import warnings
from decimal import Decimal

import pyarrow as pa
import pytest

from agnes_mcp.notebook import RoundedValuesWarning
from agnes_mcp.notebook.result import Result, decimal_as_float, decimal_rounded
from agnes_mcp.rails.results import Answer

PROVENANCE = {
    "tables": [],
    "engine": "duckdb",
    "bytes_scanned": 0,
    "row_count": 0,
    "duration_ms": 0,
    "fingerprint": "",
}


def _result(**columns: tuple[list[str | None], pa.DataType]) -> Result:
    table = pa.table(
        {
            name: pa.array([Decimal(v) if v else None for v in values], kind)
            for name, (values, kind) in columns.items()
        }
    )
    answer = Answer.from_wire(table, {"truncated": False, "provenance": PROVENANCE})
    return Result(answer, None)


@pytest.mark.parametrize(
    ("values", "kind", "rounded"),
    [
        (["2280.97", "0.10", "-12.34", None, "99999999.99"], pa.decimal128(12, 2), False),
        (["123456789012345.67"], pa.decimal128(17, 2), False),  # 17 digits, read back whole
        (["12345678901234567.89"], pa.decimal128(38, 2), True),
        (["0.123456789012345678"], pa.decimal128(18, 18), True),
        (["12345678901234567890.123", "-1.001"], pa.decimal128(38, 3), True),  # too wide
        ([None, None], pa.decimal128(5, 1), False),
        ([], pa.decimal128(5, 1), False),
    ],
)
def test_a_decimal_is_rounded_when_its_double_reads_back_another_number(
    values: list[str | None], kind: pa.DataType, rounded: bool
) -> None:
    column = pa.chunked_array([pa.array([Decimal(v) if v else None for v in values], kind)])
    assert decimal_rounded(column, decimal_as_float(column, kind.scale)) is rounded


def test_df_warns_naming_the_rounded_columns() -> None:
    pytest.importorskip("pandas")
    result = _result(
        price=(["12.34", "0.10"], pa.decimal128(12, 2)),
        total=(["12345678901234567.89", "1.00"], pa.decimal128(38, 2)),
    )
    with pytest.warns(RoundedValuesWarning, match=r"^total: DECIMAL values") as warned:
        frame = result.df()
    assert len(warned) == 1 and "price" not in str(warned[0].message)
    assert frame.attrs["agnes"]["rounded_columns"] == ["total"]
    assert result.arrow().column("total")[0].as_py() == Decimal("12345678901234567.89")


def test_df_of_exact_decimals_says_nothing() -> None:
    pytest.importorskip("pandas")
    result = _result(price=(["12.34", "0.10", None], pa.decimal128(12, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = result.df()
    assert frame.attrs["agnes"]["rounded_columns"] == []
    assert list(frame["price"][:2]) == [12.34, 0.1]
