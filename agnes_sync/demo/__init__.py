"""The embedded demo: a fictional company's data, generated deterministically."""
