"""The authorization policy: what each role allows (data, `serve/policy.toml`) and what a caller may do to a
workflow or a run. Pure functions over the policy and plain records; `serve.auth` applies them on every request.

Two questions, answered in two places:
- **May this caller use this scope at all?** `effective_scopes(role, key_scopes)`: the role's permissions that
  the key's scopes also cover (a key narrows its user's role, never widens it); admin keys (`admin`, `*`) are
  the installation's administrators and keep every scope. `serve.auth.require` checks it on every route, and
  the WebSocket path calls the same `authorize`.
- **May it touch this workflow or run?** `access_to_workflow` gives an `Access` level: the workflow's owner, the
  admins of its tenant (roles with `sees_tenant`) and admin keys `MANAGE` it; a share gives its role (`VIEW`,
  `RUN`, `EDIT`); anyone else sees nothing (404, as for a workflow that does not exist).
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from pathlib import Path
from typing import Any

POLICY_FILE = Path(__file__).with_name("policy.toml")
#: Every scope a key can hold (and a role can grant, `serve/policy.toml`). `admin` implies all others and lifts
#: tenancy; `users:admin` manages the users of one's tenant.
SCOPES = (
    "workflows:read",
    "workflows:write",
    "runs:read",
    "runs:write",
    "plugins:admin",
    "keys:admin",
    "secrets:read",
    "secrets:write",
    "models:read",
    "models:write",
    "models:infer",
    "users:admin",
    "webhooks:read",
    "webhooks:write",
    "admin",
)

#: Scopes that make a key the installation's administrator (every scope, every tenant).
ADMIN_SCOPES = frozenset({"admin", "*"})


class Access(IntEnum):
    """What a caller may do to a workflow (and so to its runs), each level including the ones below."""

    NONE = 0
    VIEW = 1  # read it, its versions and its runs
    RUN = 2  # also start runs of it
    EDIT = 3  # also save new versions, cancel its runs
    MANAGE = 4  # also delete it and change its shares (its owner, its tenant's admins, admin keys)


#: The access each share role gives (`engine.store.roles.SHARE_ROLES`).
SHARE_ACCESS = {"viewer": Access.VIEW, "runner": Access.RUN, "editor": Access.EDIT}


@dataclass(frozen=True)
class Role:
    """One role of the policy."""

    name: str
    permissions: frozenset[str]
    sees_tenant: bool
    assigns: frozenset[str]


class PolicyError(ValueError):
    """The policy file is inconsistent (an unknown scope or role); the message names the entry."""


@cache
def roles() -> dict[str, Role]:
    """The roles of the policy file, checked against the scopes and role names the server knows."""
    return parse_policy(tomllib.loads(POLICY_FILE.read_text(encoding="utf-8")))


def parse_policy(data: dict[str, Any]) -> dict[str, Role]:
    """Roles from a parsed policy document; raises `PolicyError` naming what is wrong."""
    from engine.store.roles import ROLES

    table = data.get("roles")
    if not isinstance(table, dict):
        raise PolicyError("the policy has no [roles.<name>] tables")
    if set(table) != set(ROLES):
        raise PolicyError(
            f"the policy must define exactly the roles {list(ROLES)}; it defines {sorted(table)}"
        )
    parsed = {}
    for name in ROLES:
        entry = table[name]
        permissions = frozenset(entry.get("permissions", ()))
        unknown = sorted(permissions - set(SCOPES) | (permissions & ADMIN_SCOPES))
        if unknown:
            raise PolicyError(
                f"role {name!r}: {unknown} are not scopes a role can hold (see serve.policy.SCOPES)"
            )
        assigns = frozenset(entry.get("assigns", ()))
        if not assigns <= set(ROLES):
            raise PolicyError(f"role {name!r} assigns unknown roles {sorted(assigns - set(ROLES))}")
        parsed[name] = Role(name, permissions, bool(entry.get("sees_tenant", False)), assigns)
    return parsed


def role(name: str) -> Role:
    """One role; an unknown name (a row written by a newer version) allows nothing."""
    return roles().get(name) or Role(name, frozenset(), False, frozenset())


def scope_covered(granted: Collection[str], required: str) -> bool:
    """Whether key scopes `granted` cover `required` (exact, `area:*` or `*`)."""
    area = required.split(":", 1)[0]
    return required in granted or f"{area}:*" in granted or "*" in granted


def is_admin_key(key_scopes: Collection[str]) -> bool:
    """Whether a key with these scopes is an installation admin key."""
    return any(scope in ADMIN_SCOPES for scope in key_scopes)


def effective_scopes(role_name: str, key_scopes: Collection[str]) -> frozenset[str]:
    """What a key of a user with `role_name` may do: the role's permissions its scopes cover; an admin key
    keeps `admin` (every scope)."""
    if is_admin_key(key_scopes):
        return frozenset({"admin"})
    return frozenset(p for p in role(role_name).permissions if scope_covered(key_scopes, p))


def may_assign(caller_role: str, *roles_involved: str) -> bool:
    """Whether a caller of `caller_role` may give (or take away) every role of `roles_involved`."""
    allowed = role(caller_role).assigns
    return all(r in allowed for r in roles_involved)


def access_to_workflow(
    *,
    is_admin: bool,
    user_id: str,
    tenant_id: str,
    sees_tenant: bool,
    owner: str,
    owner_tenant: str | None,
    share_role: str | None,
) -> Access:
    """A caller's access to a workflow of `owner` (whose tenant is `owner_tenant`), shared with the caller at
    `share_role` (its highest share, direct or through its tenant; None when not shared)."""
    if is_admin or owner == user_id or (sees_tenant and owner_tenant == tenant_id):
        return Access.MANAGE
    return SHARE_ACCESS.get(share_role or "", Access.NONE)
