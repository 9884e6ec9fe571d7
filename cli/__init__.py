"""The ``agnes`` command. Thin: parse arguments, call a service or the server's API, print."""
