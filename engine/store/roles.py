"""The names of the roles a user holds in its tenant, and of the roles a workflow is shared at.

The store only keeps and checks these names; what each role allows (its permissions, which are API scopes) is
data of the server's policy (`serve/policy.toml`, read by `serve.policy`), tested alone. Roles are ordered from
the most to the least powerful; a tenant always keeps an enabled owner (`LastOwnerError`).
"""

from __future__ import annotations

from engine.store.errors import StoreError

#: Every role of a user in its tenant, most powerful first. `member` is what every user could do before roles
#: existed (migration 0006): every scope but `admin`, over its own resources and those shared with it.
ROLES = ("owner", "admin", "member", "editor", "runner", "viewer")
#: The role of a user created without one (users made by `rayweave keys create` or `POST /v1/keys`).
DEFAULT_ROLE = "member"
#: The role of a user created as an installation administrator (`is_admin`).
ADMIN_ROLE = "owner"
#: Roles a tenant's owners hold; at least one enabled user of each tenant holds it.
OWNER_ROLE = "owner"
#: The roles a workflow can be shared at, least powerful first (a higher one includes the lower).
SHARE_ROLES = ("viewer", "runner", "editor")


class LastOwnerError(StoreError, ValueError):
    """The change would leave a tenant without an enabled owner, or the installation without an admin."""


def check_role(role: str) -> str:
    """`role` if it is one of `ROLES`; otherwise `ValueError` naming the roles."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role


def check_share_role(role: str) -> str:
    """`role` if a workflow can be shared at it; otherwise `ValueError` naming those roles."""
    if role not in SHARE_ROLES:
        raise ValueError(
            f"a workflow cannot be shared at {role!r}; share it at one of {', '.join(SHARE_ROLES)}"
        )
    return role


def share_rank(role: str) -> int:
    """How much a share role allows: 1 viewer, 2 runner, 3 editor (0 for anything else)."""
    return SHARE_ROLES.index(role) + 1 if role in SHARE_ROLES else 0
