"""Group memberships read from Google Workspace (Directory API)."""
