"""The connector interface: a small base class with required methods and optional capabilities.

A connector reads one kind of source. It declares its options once, as pydantic
models (``Options`` for the source, ``TableOptions`` for one table), and those drive
validation, CLI help and admin forms. Required:

- :meth:`Connector.list_tables` — what the source offers;
- :meth:`Connector.describe_table` — the columns of one table spec (for validation);
- :meth:`Connector.extract` — one table spec into the extract contract.

Optional capabilities (:class:`Capability`) say which sync strategies and query modes
it supports; the engine refuses a spec the connector cannot serve. Failures raise
:class:`agnes_sync.errors.TransientSyncError` (retried with backoff) or
:class:`agnes_sync.errors.TerminalSyncError` (reported at once).

A connector with :attr:`Capability.WEBHOOK` also takes pushed deliveries (the server's
``POST /webhooks/<connector>/<source>``), in two steps the server drives without knowing
the source: :meth:`Connector.receive_webhook` checks one delivery (signature over the raw
body, payload) and says what to do (a :class:`WebhookReceipt`), fast and without I/O;
later, off the request, :meth:`Connector.apply_webhook` does the work of many deliveries at
once through an :class:`~agnes_sync.contract.ExtractWriter` (a :class:`WebhookOutcome`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, ClassVar

import duckdb
from pydantic import BaseModel, ConfigDict, ValidationError

from agnes_sync.contract import ExtractWriter, PublishedTable
from agnes_sync.errors import AgnesError, ConnectorCapabilityMissing, InvalidTableSpec
from agnes_sync.sql_text import quote_literal
from agnes_sync.table_spec import TableSpec
from agnes_sync.time_zone import TIME_ZONE


class Capability(StrEnum):
    FULL_REFRESH = "full_refresh"
    INCREMENTAL = "incremental"
    PARTITIONED = "partitioned"
    REMOTE = "remote"  # tables can stay in the source, queried there
    MATERIALIZED = "materialized"  # registered SQL runs in the source, result is published
    WEBHOOK = "webhook"  # takes pushed deliveries: receive_webhook + apply_webhook


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class SourceTable:
    """A table the source offers: its name there, and a suggested id for the registry."""

    source_table: str
    bucket: str | None = None
    suggested_id: str | None = None
    description: str = ""


# TableRequest field -> the TableSpec field it is read from, where the names differ
SPEC_FIELD = {"options": "source_options"}


@dataclass(frozen=True)
class TableRequest:
    """One registered table, as the connector sees it: the fields of
    :class:`~agnes_sync.table_spec.TableSpec` a connector reads (same names and defaults,
    documented there; ``options`` is the spec's ``source_options``), made by :meth:`of`.

    A frozen dataclass of plain values (enums as their strings, the key as a tuple) that
    connectors and strategies compare and ``dataclasses.replace``."""

    id: str
    description: str = ""
    bucket: str | None = None
    source_table: str | None = None
    source_query: str | None = None
    query_mode: str = "local"
    sync_strategy: str = "full_refresh"
    primary_key: tuple[str, ...] = ()
    incremental_column: str | None = None
    incremental_window_days: int | None = None
    max_history_days: int | None = None
    initial_load_chunk_days: int | None = None
    where_filters: str | None = None
    partition_by: str | None = None
    partition_granularity: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: TableSpec) -> TableRequest:
        """The connector's view of a registered table."""
        values = {f.name: getattr(spec, SPEC_FIELD.get(f.name, f.name)) for f in fields(cls)}
        values["primary_key"] = tuple(values["primary_key"] or ())
        values["options"] = dict(values["options"])
        return cls(**{k: v.value if isinstance(v, Enum) else v for k, v in values.items()})


@dataclass(frozen=True)
class SourceContext:
    """What a connector instance is given: its source name, options and the data dir."""

    name: str
    options: dict[str, Any]
    data_dir: Path

    def resolve(self, path: str | Path) -> Path:
        """A path option, relative to the data dir unless absolute."""
        candidate = Path(path)
        return candidate if candidate.is_absolute() else (self.data_dir / candidate)


# --- webhooks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookDelivery:
    """One pushed request, as received: the raw body (signatures are over its exact bytes)
    and the headers, names in lower case."""

    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class WebhookReceipt:
    """What a verified delivery asks for.

    ``delivery_id`` is the sender's idempotency key (the same on every retry of one
    delivery; ``None``: the sender gives none); ``work`` the items to hand to
    :meth:`Connector.apply_webhook` later (hashable: the server merges equal items waiting
    in its queue); no work means the delivery is acknowledged and ignored, ``note`` says
    why."""

    delivery_id: str | None
    work: tuple[Hashable, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class WebhookOutcome:
    """What :meth:`Connector.apply_webhook` did: the tables whose published data changed
    (the server re-reads the extract when there are any) and the items to try again later
    (a source briefly unavailable)."""

    tables: tuple[str, ...] = ()
    retry: tuple[Hashable, ...] = ()
    retry_after_seconds: float | None = None  # the source asked for a pause this long


class WebhookNotConfigured(AgnesError):
    """The source takes webhooks but has no secret to check them with."""

    code = "webhook_not_configured"
    status = 503


class WebhookSignatureInvalid(AgnesError):
    """The signature is missing or does not match the body."""

    code = "webhook_signature_invalid"
    status = 401


class WebhookPayloadInvalid(AgnesError):
    """A correctly signed delivery whose payload cannot be used."""

    code = "webhook_payload_invalid"
    status = 400


class Connector(ABC):
    """Base class of every connector; subclasses are registered under ``agnes.connectors``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.FULL_REFRESH})
    Options: ClassVar[type[BaseModel]] = NoOptions
    TableOptions: ClassVar[type[BaseModel]] = NoOptions
    webhook_max_bytes: ClassVar[int] = 1024 * 1024  # larger deliveries get 413

    def __init__(self, context: SourceContext) -> None:
        self.context = context
        self._duckdb: dict[Path | None, duckdb.DuckDBPyConnection] = {}
        self._duckdb_lock = threading.Lock()
        try:
            self.options = self.Options.model_validate(context.options)
        except ValidationError as exc:
            raise InvalidTableSpec(
                f"Source '{context.name}' ({self.name}) has invalid options: "
                + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
                hint="Fix sources.<name>.options in instance.yaml (see docs/configuration.md).",
            ) from None

    # --- required ----------------------------------------------------------------------

    @abstractmethod
    def list_tables(self) -> list[SourceTable]:
        """The tables this source offers."""

    @abstractmethod
    def describe_table(self, request: TableRequest) -> list[Column]:
        """The columns ``request`` would produce; raises if the table does not exist."""

    @abstractmethod
    def extract(self, request: TableRequest, writer: ExtractWriter) -> PublishedTable:
        """Bring ``request`` into the extract contract through ``writer``."""

    # --- optional: webhooks (Capability.WEBHOOK) ---------------------------------------

    def receive_webhook(self, delivery: WebhookDelivery) -> WebhookReceipt:
        """Verify ``delivery`` (raise :class:`WebhookNotConfigured`,
        :class:`WebhookSignatureInvalid` or :class:`WebhookPayloadInvalid`) and say what it
        asks for. Called on the request path: cheap, no network, no writes."""
        raise ConnectorCapabilityMissing(f"The {self.name} connector takes no webhooks.")

    def apply_webhook(self, work: Sequence[Hashable], writer: ExtractWriter) -> WebhookOutcome:
        """Do the work of the receipts ``work`` came from (in the order received, equal
        items merged), publishing through ``writer``. Called off the request path, one
        call at a time per source."""
        raise ConnectorCapabilityMissing(f"The {self.name} connector takes no webhooks.")

    # --- shared helpers -----------------------------------------------------------------

    def readable_directories(self) -> tuple[Path, ...]:
        """Folders this connector's DuckDB may read besides the extract it writes: none,
        unless the connector reads local files (the files connector names its folder).
        A connector that fetches over the network lands what it fetched in the extract's
        folder first."""
        return ()

    def duckdb_cursor(self, writes_to: Path | None = None) -> duckdb.DuckDBPyConnection:
        """A fresh cursor on this connector's in-memory DuckDB, locked down: no file outside
        :meth:`readable_directories` and ``writes_to`` (the extract's folder, where its
        staged and published parquet live), no extension loaded, no setting changed. An
        admin's ``where_filters`` runs here: ``read_text('/proc/self/environ')`` must
        find nothing to read. One instance per ``writes_to`` (a new instance costs ~11 ms,
        a cursor nothing; cursors are safe across threads)."""
        key = writes_to.resolve() if writes_to is not None else None
        with self._duckdb_lock:
            instance = self._duckdb.get(key)
            if instance is None:
                instance = self._duckdb[key] = self._locked_duckdb(key)
            cursor = instance.cursor()
        return cursor

    def _locked_duckdb(self, writes_to: Path | None) -> duckdb.DuckDBPyConnection:
        folders = [p.resolve() for p in self.readable_directories()]
        if writes_to is not None:
            folders.append(writes_to)
        listed = ", ".join(quote_literal(str(folder) + "/") for folder in folders)
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        # Times as every query reads them (DuckDB's default is the machine's zone): an
        # admin's row filter and the profile's min and max mean what they mean in queries.
        con.execute(f"SET GLOBAL TimeZone = {quote_literal(TIME_ZONE)}")  # cursors too
        con.execute(f"SET allowed_directories = [{listed}]")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con

    # --- shared checks ------------------------------------------------------------------

    def table_options(self, request: TableRequest) -> BaseModel:
        try:
            return self.TableOptions.model_validate(request.options)
        except ValidationError as exc:
            raise InvalidTableSpec(
                f"Table '{request.id}' has invalid source options: "
                + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
                hint=f"Options of the {self.name} connector: "
                + ", ".join(sorted(self.TableOptions.model_fields)),
            ) from None

    def local_filter(self, predicate: str | None, columns: Sequence[Column]) -> str | None:
        """The registration's row filter as DuckDB applies it to what this connector
        extracts (columns typed as ``columns``): the checked predicate, unless a connector
        reads its source's values differently (Keboola: text compared with numbers)."""
        from agnes_sync.strategies import checked_filter

        return checked_filter(predicate)

    def check_supported(self, request: TableRequest) -> None:
        """Refuse a strategy or query mode this connector cannot serve."""
        wanted = {Capability(request.sync_strategy)}
        if request.query_mode in (Capability.REMOTE, Capability.MATERIALIZED):
            wanted.add(Capability(request.query_mode))
        missing = sorted(wanted - self.capabilities)
        if missing:
            raise ConnectorCapabilityMissing(
                f"The {self.name} connector cannot do {', '.join(missing)} (table '{request.id}').",
                hint=f"It supports: {', '.join(sorted(self.capabilities))}.",
            )
