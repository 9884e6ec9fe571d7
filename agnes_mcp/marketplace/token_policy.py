"""Which server environment variables a marketplace may name as its read token.

git sends the named variable's value as a password to the repository's host after a
401. Any variable an admin could name would be sent there too: the OIDC client secret, a
warehouse token, whatever the server's environment holds, to a host the admin chose.
So only the variables the operator lists in ``marketplace.token_envs`` (set where the
server runs, like the variables themselves) are taken, at registration and again at
every fetch.
"""

from __future__ import annotations

from agnes_mcp.errors import MarketplaceTokenEnvRefused
from agnes_mcp.settings import MarketplaceSettings


def check_token_env(variable: str, settings: MarketplaceSettings) -> str:
    """``variable`` if the operator allows marketplaces to use it, else a refusal naming
    the setting (never the variable's value)."""
    if variable in settings.token_envs:
        return variable
    listed = ", ".join(settings.token_envs) or "none"
    raise MarketplaceTokenEnvRefused(
        f"{variable} is not a variable marketplaces may use (marketplace.token_envs: {listed}).",
        hint="Whoever runs the server lists the read-token variable in the setting "
        f"marketplace.token_envs (e.g. AGNES_MARKETPLACE__TOKEN_ENVS='[\"{variable}\"]') "
        "and restarts it; the server never sends any other of its variables to a "
        "repository host.",
        details={"fields": [{"field": "token_env", "problem": "not in marketplace.token_envs"}]},
    )
