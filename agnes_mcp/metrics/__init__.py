"""Metric definitions: the YAML model, its loader, the compiler to SQL and the service."""
