"""Lists Agnes answers with (catalog entries, columns, snapshots, metrics), shown in
Jupyter as one HTML table, whole: these lists are never cut."""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from agnes_mcp.notebook.result import _need
from agnes_sync.printable import printable

Item = TypeVar("Item", bound=BaseModel)


def _cell(value: object) -> str:
    if value is None:
        return "<i>—</i>"
    if isinstance(value, list):
        return html.escape(", ".join(str(v) for v in value))
    return html.escape(str(value))


class Listing(Generic[Item]):
    """A titled list of models; iterate it, index it, or take ``.df()``. ``notes`` say
    what to know about the list itself (e.g. the last one kept, the server unreachable)."""

    def __init__(
        self,
        title: str,
        items: Sequence[Item],
        columns: Sequence[str],
        *,
        notes: Sequence[str] | None = None,
    ) -> None:
        self.title = title
        self.items = list(items)
        self.columns = list(columns)
        self.notes = list(notes or [])

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Item:
        return self.items[index]

    def df(self) -> Any:
        pandas = _need("pandas")
        frame = pandas.DataFrame([item.model_dump(mode="json") for item in self.items])
        return frame

    def __repr__(self) -> str:
        lines = [f"{self.title} ({len(self.items)})"]
        for item in self.items:
            values = item.model_dump()
            lines.append("  " + " · ".join(str(values.get(c)) for c in self.columns))
        lines.extend(f"Note: {note}" for note in self.notes)
        return printable("\n".join(lines))  # escape codes in a description never run

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        rows = []
        for item in self.items:
            values = item.model_dump()
            rows.append(
                "<tr>" + "".join(f"<td>{_cell(values.get(c))}</td>" for c in self.columns) + "</tr>"
            )
        return (
            f"<div class='agnes-listing'><p><strong>{html.escape(self.title)}</strong> "
            f"({len(self.items)})</p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            + "".join(f"<p><em>{html.escape(note)}</em></p>" for note in self.notes)
            + "</div>"
        )
