"""The sync engine: extract contract, connector registry, orchestrator, pull/push client."""
