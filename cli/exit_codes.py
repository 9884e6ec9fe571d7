"""Exit codes of the ``agnes`` command (documented in docs/cli.md)."""

OK = 0
FAILURE = 1  # the server refused or the operation failed (not found, conflict, ...)
USAGE = 2  # bad arguments (argparse's own code)
CONFIG = 3  # settings or credentials are missing or invalid, or no workspace here
AUTH = 4  # the token was refused (401) or lacks permission (403)
UNREACHABLE = 5  # the server could not be reached
TRUNCATED = 6  # --format csv: the rows were cut by a limit (stderr says which)
INTERRUPTED = 130  # Ctrl-C
BROKEN_PIPE = 141  # the reader of stdout went away (| head): 128 + SIGPIPE, as Unix tools
