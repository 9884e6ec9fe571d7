"""Distribution to workspaces: the per-caller manifest, file downloads, uploads from push."""
