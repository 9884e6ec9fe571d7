"""A test double: deterministic generated rows, optional delays and injected failures."""
