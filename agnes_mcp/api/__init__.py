"""The HTTP side of the server: one ASGI app (FastAPI host, MCP mounted at /mcp)."""
