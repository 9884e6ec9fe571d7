"""The keboola connector."""
