"""Validators of custom types run at the ports of the nodes that carry those types, on Ray and in-process:
a value the validator rejects fails the node with a `PortTypeError` instead of passing."""

from __future__ import annotations

from typing import Annotated, Any

import pytest

import typesys
from cluster.settings import Settings
from engine import run
from engine.compile import compile_workflow
from engine.errors import WorkflowInputError
from nodes import Catalog, node
from nodes.states import NodeStatus

#: A custom type: a String that holds an "@" (module-level, so Ray workers import it by name).
EMAIL = typesys.NominalType("Email", typesys.STRING)


def is_email(value: Any) -> bool:
    """The validator of `Email`."""
    return "@" in value


@node(plugin="vt")
def make_email(user: str) -> Annotated[str, EMAIL]:
    """An address of `user` (`user` itself when it holds an "@", so a test can pass a bad one through)."""
    return user if "@" in user or user.startswith("bad") else f"{user}@example.com"


@node(plugin="vt")
def domain(address: Annotated[str, EMAIL]) -> str:
    """The domain of an address."""
    return address.split("@", 1)[1]


def registry() -> typesys.TypeRegistry:
    """The default registry plus `Email` and its validator."""
    found = typesys.TypeRegistry.default()
    found.register_type("Email", typesys.STRING, validator=is_email)
    return found


def catalog() -> Catalog:
    return Catalog([*Catalog.builtin().definitions(), make_email, domain], registry=registry())


FLOW = {
    "format": "rayweave.workflow/1",
    "name": "emails",
    "inputs": {"user": {"type": "String"}},
    "nodes": {
        "make": {"type": "vt/make_email@1", "in": {"user": "$inputs.user"}},
        "domain": {"type": "vt/domain@1", "in": {"address": "make.out"}},
    },
    "outputs": {"domain": "domain.out"},
}

#: `Email` as a workflow input type: the compiler knows it from the catalog's registry.
BY_INPUT = {
    "format": "rayweave.workflow/1",
    "name": "emails-in",
    "inputs": {"address": {"type": "Email"}},
    "nodes": {"domain": {"type": "vt/domain@1", "in": {"address": "$inputs.address"}}},
    "outputs": {"domain": "domain.out"},
}


def test_the_plan_carries_only_the_validators_its_ports_need() -> None:
    plan = compile_workflow(FLOW, catalog(), optimize=False)
    for planned in plan.nodes:
        assert planned.validators is not None and planned.validators.validator(EMAIL) is is_email
    plain = compile_workflow(
        {
            "format": "rayweave.workflow/1",
            "name": "plain",
            "nodes": {"n": {"type": "builtin/negate@1", "in": {"x": {"value": 1}}}},
            "outputs": {"n": "n"},
        },
        catalog(),
    )
    assert all(p.validators is None for p in plain.nodes) and plain.validators is None


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_value_the_validator_rejects_fails_at_the_port(
    request: pytest.FixtureRequest, settings: Settings, executor: str
) -> None:
    if executor == "ray":
        request.getfixturevalue("ray_session")
    good = run(FLOW, {"user": "ada"}, catalog=catalog(), executor=executor, cache=False, settings=settings)
    assert good.ok and good.outputs == {"domain": "example.com"}
    bad = run(
        FLOW, {"user": "bad-address"}, catalog=catalog(), executor=executor, cache=False, settings=settings
    )
    assert not bad.ok and bad.nodes["make"].status is NodeStatus.FAILED
    error = bad.nodes["make"].error
    assert error is not None and error.type == "PortTypeError"
    assert (
        "output" in error.message
        and "'out'" in error.message
        and "rejected by its validator" in error.message
    )


def test_workflow_inputs_of_a_custom_type_are_validated(settings: Settings) -> None:
    ok = run(BY_INPUT, {"address": "ada@example.com"}, catalog=catalog(), executor="local", settings=settings)
    assert ok.ok and ok.outputs == {"domain": "example.com"}
    with pytest.raises(WorkflowInputError, match="rejected by its validator"):
        run(BY_INPUT, {"address": "nobody"}, catalog=catalog(), executor="local", settings=settings)
