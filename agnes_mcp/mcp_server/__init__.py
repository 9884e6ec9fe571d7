"""The MCP tool surface (FastMCP), served over streamable HTTP at /mcp."""
