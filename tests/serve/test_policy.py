"""The authorization policy alone (`serve/policy.toml` through `serve.policy`): no server, no store."""

from __future__ import annotations

import itertools
import tomllib
import typing

import pytest

from engine.store.roles import ROLES, SHARE_ROLES
from serve import policy
from serve.auth import SCOPES
from serve.policy import Access, access_to_workflow, effective_scopes, may_assign


def test_the_policy_file_defines_every_role_with_known_scopes() -> None:
    roles = policy.roles()
    assert list(roles) == list(ROLES)
    for role in roles.values():
        assert role.permissions <= set(SCOPES) - {"admin"}
    # Each role holds what the next one holds (owner >= admin >= member >= editor >= runner >= viewer).
    order = ["owner", "admin", "member", "editor", "runner", "viewer"]
    for stronger, weaker in itertools.pairwise(order):
        assert roles[weaker].permissions <= roles[stronger].permissions, (stronger, weaker)
    assert {r.name for r in roles.values() if r.sees_tenant} == {"owner", "admin"}
    # `member` keeps what every user could do before roles: every scope but the administrators'.
    assert roles["member"].permissions == set(SCOPES) - {"admin", "users:admin"}


def test_a_key_narrows_its_role_and_never_widens_it() -> None:
    assert effective_scopes("viewer", ["workflows:read", "workflows:write", "runs:*"]) == {
        "workflows:read",
        "runs:read",
    }
    assert effective_scopes("editor", ["runs:read"]) == {"runs:read"}
    assert effective_scopes("runner", ["users:admin", "plugins:admin"]) == frozenset()
    assert effective_scopes("owner", ["*"]) == {"admin"}  # admin keys stay the installation's administrators
    assert effective_scopes("viewer", ["admin"]) == {"admin"}
    assert effective_scopes("no-such-role", ["workflows:read"]) == frozenset()


def test_who_may_give_which_role() -> None:
    assert may_assign("owner", "owner", "viewer")
    assert may_assign("admin", "editor", "admin")
    assert not may_assign("admin", "owner")
    assert not may_assign("editor", "viewer")


def test_access_to_a_workflow() -> None:
    base = dict(is_admin=False, user_id="u", tenant_id="t", sees_tenant=False, owner="o", owner_tenant="t")
    assert access_to_workflow(**base, share_role=None) == Access.NONE  # type: ignore[arg-type]
    assert access_to_workflow(**base, share_role="runner") == Access.RUN  # type: ignore[arg-type]
    assert access_to_workflow(**{**base, "owner": "u"}, share_role=None) == Access.MANAGE  # type: ignore[arg-type]
    tenant_admin = {**base, "sees_tenant": True}
    assert access_to_workflow(**tenant_admin, share_role=None) == Access.MANAGE  # type: ignore[arg-type]
    other_tenant = {**tenant_admin, "owner_tenant": "t2"}
    assert access_to_workflow(**other_tenant, share_role="viewer") == Access.VIEW  # type: ignore[arg-type]
    assert access_to_workflow(**{**base, "is_admin": True}, share_role=None) == Access.MANAGE  # type: ignore[arg-type]
    assert [policy.SHARE_ACCESS[r] for r in SHARE_ROLES] == [Access.VIEW, Access.RUN, Access.EDIT]


def test_an_inconsistent_policy_is_refused_naming_the_entry() -> None:
    data = tomllib.loads(policy.POLICY_FILE.read_text())
    data["roles"]["viewer"]["permissions"].append("runs:delete")
    with pytest.raises(policy.PolicyError, match=r"role 'viewer': \['runs:delete'\]"):
        policy.parse_policy(data)
    data = tomllib.loads(policy.POLICY_FILE.read_text())
    data["roles"]["runner"]["permissions"].append("admin")
    with pytest.raises(policy.PolicyError, match="'admin'"):
        policy.parse_policy(data)
    del data["roles"]["runner"]
    with pytest.raises(policy.PolicyError, match="exactly the roles"):
        policy.parse_policy(data)


def test_the_api_role_names_are_the_store_roles() -> None:
    from serve.api.v1.shares import ShareRole
    from serve.api.v1.users import RoleName

    assert set(typing.get_args(RoleName)) == set(ROLES)
    assert set(typing.get_args(ShareRole)) == set(SHARE_ROLES)
