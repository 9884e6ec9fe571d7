"""The jira connector."""
