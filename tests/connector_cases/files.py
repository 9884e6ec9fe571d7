"""The files connector as a conformance case: the table is ``events.csv`` in a folder."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.connector_cases import FIELDS, Record, merged

FILE = "events.csv"


class FilesSource:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.records: list[Record] = []
        self.add: Sequence[str] = ()
        self.drop: Sequence[str] = ()
        self.broken = False

    def options(self) -> dict[str, Any]:
        return {"path": str(self.folder)}

    def location(self) -> dict[str, Any]:
        return {"source_table": FILE}

    def put(
        self, records: Sequence[Record], *, add: Sequence[str] = (), drop: Sequence[str] = ()
    ) -> None:
        self.records, self.add, self.drop = list(records), tuple(add), tuple(drop)
        self._write()

    def upsert(self, records: Sequence[Record]) -> None:
        self.records = merged(self.records, records)
        self._write()

    def fail_next(self, kind: str) -> None:
        assert kind == "terminal", kind
        self.broken = True  # the file is gone: SourceTableNotFound
        self._write()

    def heal(self) -> None:
        self.broken = False
        self._write()

    def _write(self) -> None:
        path = self.folder / FILE
        if self.broken:
            path.unlink(missing_ok=True)
            return
        fields = [f for f in FIELDS if f not in self.drop]
        staged = path.with_suffix(".tmp")
        with staged.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow([*fields, *self.add])
            for record in self.records:
                values = dict(zip(FIELDS, record, strict=True))
                values["updated_at"] = record[1].isoformat(sep=" ")
                writer.writerow(
                    [values[f] for f in fields] + [f"{c}-{record[0]}" for c in self.add]
                )
        staged.replace(path)


class FilesCase:
    name = "files"
    connector = "files"
    table = "events"
    capabilities = frozenset({"full_refresh", "incremental", "partitioned"})
    features = frozenset({"discovery", "drift", "terminal_failure"})
    columns = {f: f for f in FIELDS}

    @contextmanager
    def open(self, root: Path, env: pytest.MonkeyPatch) -> Iterator[FilesSource]:
        folder = root / "files"
        folder.mkdir()
        yield FilesSource(folder)


CASES = [FilesCase()]
