"""Benchmarks; run them with `uv run python benchmarks/run.py`."""
