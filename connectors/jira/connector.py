"""The jira connector (being built: lists no tables and refuses to extract yet)."""

from __future__ import annotations

from agnes_sync.connector import Column, Connector, SourceTable, TableRequest
from agnes_sync.contract import ExtractWriter, PublishedTable
from agnes_sync.errors import TerminalSyncError


class JiraConnector(Connector):
    name = "jira"
    description = "Jira (not ready yet)."

    def list_tables(self) -> list[SourceTable]:
        return []

    def describe_table(self, request: TableRequest) -> list[Column]:
        raise TerminalSyncError("The jira connector is not ready yet.")

    def extract(self, request: TableRequest, writer: ExtractWriter) -> PublishedTable:
        raise TerminalSyncError("The jira connector is not ready yet.")
