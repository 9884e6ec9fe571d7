"""Authentication (personal access tokens) and authorization (groups and grants)."""
