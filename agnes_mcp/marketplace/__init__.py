"""Claude Code plugin marketplaces: synced from git, served per caller's grants.

Upstream, an admin registers git repositories in Claude Code's marketplace format; the
server fetches each into ``DATA_DIR/marketplaces/<slug>/`` (:mod:`.sync`), checks and
copies its plugins into a content-addressed store (``_plugins/<hash>/``) and records
them (``marketplace_plugins``). Downstream, each caller's *feed* is the plugins granted to
their groups (:mod:`.feed`), served as a deterministic ZIP and as a read-only git
repository over smart HTTP, both built once per distinct feed and cached (``_feeds/``).
"""
