"""Connector cases: one per connector that should pass ``tests/test_connector_conformance.py``.

The conformance test has ONE body per behaviour (registration, discovery, each sync
strategy the connector declares, schema drift, failures that keep the last good data,
the same through the sync service) and runs it over every case found here. To add a
connector, add a module ``tests/connector_cases/<name>.py`` that defines::

    CASES: list[Case] = [MyCase()]

Every ``*.py`` module of this package (but this one) is imported and its ``CASES``
collected (:func:`all_cases`); nothing else needs to change.

The data
--------
All cases publish the same abstract table, the **conformance table**: records
``(id, updated_at, amount, country)`` (:data:`Record`: int, naive UTC datetime, float,
str). ``id`` identifies a record (the primary key), ``updated_at`` marks its change
(the incremental column, also the partition column, by month). A case stores the
records in its source however the source stores data (a CSV file, a Keboola table,
issues behind webhooks, ...) and says, with :attr:`Case.columns`, which published
column holds each field (identity by default). The test reads the published table with
``SELECT <id>, <updated_at>, <amount>, <country> FROM <table> ORDER BY 1`` and compares the
rows with the records (timestamps as naive UTC, amounts as floats).

Schema drift adds or removes columns beside those four: :meth:`Source.put` with
``add=("channel",)`` gives every record a column ``channel`` holding ``f"channel-{id}"``
(a string); ``drop=("amount",)`` removes a field's column.

The protocol
------------
:class:`Case` describes a connector and opens a :class:`Source`: a running, empty source
(a folder, a fake server on a real socket, ...) that the test fills and breaks:

- ``options()`` — the source's ``options`` (``sources.<name>.options`` in instance.yaml);
- ``location()`` — the fields of a registration that point at the conformance table
  (``bucket``, ``source_table``, ``source_options``); the test adds strategy fields;
- ``put(records, add=(), drop=())`` — from now on the source holds exactly ``records``,
  all of them changed now;
- ``upsert(records)`` — ``records`` are added, or replace the records with the same id,
  changed now; the others are unchanged (a case whose source cannot tell changed records
  apart may hold them all as changed: the merged result is the same);
- ``fail_next(kind)`` — extractions fail, ``"transient"`` (must raise an error whose
  ``transient`` is true, e.g. the source answering 503) or ``"terminal"`` (must raise
  :class:`~agnes_sync.errors.TerminalSyncError` or a subclass), until ``heal()``.

:attr:`Case.features` says which optional behaviours apply (:data:`FEATURES`); the sync
strategies tested are the ones in :attr:`Case.capabilities`, which must equal the
connector class's declared capabilities. Environment variables a source needs (a token)
are set through the ``env`` monkeypatch handed to :meth:`Case.open`. A source must start
fast and need no network beyond 127.0.0.1.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pytest

Record = tuple[int, datetime, float, str]  # (id, updated_at, amount, country)
FIELDS = ("id", "updated_at", "amount", "country")

# Optional behaviours a case may declare in Case.features:
FEATURES = frozenset(
    {
        "discovery",  # list_tables offers the table under Case.table; describe_table types it
        "drift",  # put(add=..., drop=...) changes the source's columns
        "transient_failure",  # fail_next("transient") works
        "terminal_failure",  # fail_next("terminal") works
    }
)

# Three months, one partition each; every updated_at is older than those UPSERTED.
BASE_RECORDS: list[Record] = [
    (1, datetime(2026, 1, 5, 8, 0), 10.5, "US"),
    (2, datetime(2026, 1, 20, 9, 30), 20.0, "CA"),
    (3, datetime(2026, 2, 2, 10, 0), 30.25, "US"),
    (4, datetime(2026, 2, 14, 11, 0), 40.0, "DE"),
    (5, datetime(2026, 3, 1, 12, 0), 50.0, "US"),
    (6, datetime(2026, 3, 9, 13, 45), 60.75, "FR"),
]
# A changed record 5 and a new record 7, both in March.
UPSERTED: list[Record] = [
    (5, datetime(2026, 3, 20, 8, 0), 55.0, "US"),
    (7, datetime(2026, 3, 21, 9, 0), 70.0, "CA"),
]


def merged(records: Sequence[Record], changes: Sequence[Record]) -> list[Record]:
    """``records`` after ``changes`` (by id), sorted by id."""
    by_id = {r[0]: r for r in records}
    by_id.update({r[0]: r for r in changes})
    return [by_id[k] for k in sorted(by_id)]


class Source(Protocol):
    def options(self) -> dict[str, Any]: ...

    def location(self) -> dict[str, Any]: ...

    def put(
        self, records: Sequence[Record], *, add: Sequence[str] = (), drop: Sequence[str] = ()
    ) -> None: ...

    def upsert(self, records: Sequence[Record]) -> None: ...

    def fail_next(self, kind: str) -> None: ...

    def heal(self) -> None: ...


class Case(Protocol):
    name: str  # the pytest id, and the source's name in the tests
    connector: str  # the name it is registered under (agnes.connectors entry point)
    table: str  # the registered id of the conformance table (and the id discovery suggests)
    capabilities: frozenset[str]  # exactly the connector class's capabilities
    features: frozenset[str]  # a subset of FEATURES
    columns: Mapping[str, str]  # field -> published column name (for each of FIELDS)

    def open(self, root: Path, env: pytest.MonkeyPatch) -> AbstractContextManager[Source]:
        """A running, empty source; ``root`` is a fresh folder the case may use."""
        ...


def all_cases() -> list[Case]:
    """The ``CASES`` of every module in this package, in module-name order."""
    found: list[Case] = []
    for module in sorted(Path(__file__).parent.glob("*.py")):
        if module.stem.startswith("_"):
            continue
        loaded = importlib.import_module(f"{__name__}.{module.stem}")
        found.extend(loaded.CASES)
    return found
