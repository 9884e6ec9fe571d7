"""The two groups every instance has: everyone is in Everyone; Admin members pass every
resource check. A leaf module, so the principal and the rails need not load the store."""

from __future__ import annotations

EVERYONE_GROUP_ID = "everyone"
ADMIN_GROUP_ID = "admin"
