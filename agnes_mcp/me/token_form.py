"""The "create a token" form of ``/me``: what was typed, checked field by field.

The rules are the REST API's (``POST /api/tokens``): a name of 1-100 plain characters,
an optional lifetime of 1-3650 days, the ``admin`` scope only for Admin members. A
problem is reported beside its field and nothing is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from agnes_mcp.access_admin import MAX_TOKEN_DAYS
from agnes_mcp.api.schemas import PlainText
from agnes_mcp.auth.principal import Principal, TokenScope
from agnes_mcp.auth.tokens import MAX_NAME

MAX_EXPIRY_DAYS = MAX_TOKEN_DAYS
_PLAIN: TypeAdapter[str] = TypeAdapter(PlainText)


@dataclass
class TokenForm:
    """What was typed (shown again when there is a problem) and the problems by field."""

    name: str = ""
    expires_in_days: str = ""
    admin: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, form: dict[str, str]) -> TokenForm:
        return cls(
            name=form.get("name", ""),
            expires_in_days=form.get("expires_in_days", ""),
            admin=form.get("admin") in ("on", "1", "true"),
        )

    def check(self, principal: Principal) -> tuple[str, list[str], int | None] | None:
        """``(name, scopes, lifetime in days)`` when every field is fine, else ``None``
        with :attr:`errors` filled in."""
        self.errors = {}
        name = self.name.strip()
        if not name or len(name) > MAX_NAME:
            self.errors["name"] = f"Give the token a name of 1 to {MAX_NAME} characters."
        else:
            try:
                _PLAIN.validate_python(name)
            except ValidationError:
                self.errors["name"] = "The name may not hold control or invisible characters."
        lifetime: int | None = None
        days_text = self.expires_in_days.strip()
        if days_text:
            if not days_text.isdigit() or not 1 <= int(days_text) <= MAX_EXPIRY_DAYS:
                self.errors["expires_in_days"] = (
                    f"Enter a whole number of days from 1 to {MAX_EXPIRY_DAYS}, "
                    "or leave it empty for a token that does not expire."
                )
            else:
                lifetime = int(days_text)
        scopes = [TokenScope.DATA.value]
        if self.admin:
            if principal.is_admin:  # the Admin group, signed in with the admin scope
                scopes.append(TokenScope.ADMIN.value)
            else:
                self.errors["admin"] = (
                    "Only members of the Admin group, signed in with the admin scope (not "
                    "with a data-only token), may create admin tokens."
                )
        return None if self.errors else (name, scopes, lifetime)
