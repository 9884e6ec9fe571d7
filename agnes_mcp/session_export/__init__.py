"""An agent's session as a notebook: the steps a user (or their agent) ran, read from the
server's audit log or a workspace's own log, written as a runnable ``.ipynb`` that repeats
them with the notebook API (:mod:`agnes_mcp.notebook`).

The notebook is written as nbformat 4.5 JSON with the standard library (the server does not
need the ``notebook`` extra); the tests validate it with ``nbformat`` and run it with
``nbclient``.
"""
