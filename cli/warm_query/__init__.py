"""A warm per-workspace query server for ``agnes query`` (like dmypy or eslint_d).

The first local ``agnes query`` in a workspace runs in process, as always, and starts a
small detached server for that workspace; later calls send their request over a Unix
socket and print what comes back, without importing DuckDB, sqlglot, pyarrow or pydantic.
The server runs the very same command code (``cli.main.run_in_process``) with stdout and
stderr captured, so the output and exit code are the in-process ones, byte for byte. Any
failure of the warm path falls back to the in-process run.
"""
