"""The SQL rails as a layer of their own: the policy (sqlglot), the checked parse and
DuckDB's cross-check, table planning against a caller's grants, the locked sandbox, typed
refusals, results with provenance and the remote-engine interface.

It imports neither the system store, the services nor the API (an import-linter
contract holds it), so an analyst's workspace runs the same rails without the server.
"""
