"""The time zone Agnes reads and writes times in, wherever DuckDB runs: UTC.

DuckDB's default is the machine's zone, so the same ``TIMESTAMPTZ`` was cast to another
day, truncated to another month and compared with a literal differently on a server in
New York, a laptop in Tokyo and a CI machine in UTC. Every query's sandbox and every
connection a sync makes (a connector's, the host the extracts are attached to) set it.
"""

from __future__ import annotations

TIME_ZONE = "UTC"
