"""validate() never raises, whatever a document contains: every problem becomes a diagnostic."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.compile import validate
from tests.engine.compile.nodes_for_tests import catalog as make_catalog

CATALOG = make_catalog()
TYPES = [
    "t/inc@1",
    "t/add@1",
    "t/first@1",
    "t/pair@1",
    "t/split@1",
    "t/scale@1",
    "t/half@1",
    "t/total@1",
    "t/nope@1",
    "builtin/map@1",
    "builtin/to_int@1",
    "builtin/sum@1",
    "builtin/if_else@1",
    "builtin/merge@1",
    "builtin/range@1",
]
IDS = ["a", "b", "c", "d"]
PORTS = ["x", "a", "b", "xs", "s", "out", "low", "items", "value", "cond", "values"]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, width=16)
    | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["item", "k"]), inner, max_size=2)
    ),
    max_leaves=5,
)
references = st.one_of(
    st.builds(lambda n, p: f"{n}.{p}", st.sampled_from(IDS), st.sampled_from(PORTS)),
    st.sampled_from(IDS),
    st.sampled_from(["$inputs.n", "$inputs.zz"]),
    json_values.map(lambda v: {"value": v}),
)
nodes = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES), "in": st.dictionaries(st.sampled_from(PORTS), references, max_size=3)},
    optional={
        "params": st.dictionaries(
            st.sampled_from(["factor", "workflow", "stop", "offset"]), json_values, max_size=2
        ),
        "convert": st.booleans(),
        "retry": st.fixed_dictionaries({}, optional={"max_attempts": st.integers(1, 3)}),
    },
)
documents = st.fixed_dictionaries(
    {
        "format": st.just("rayweave.workflow/1"),
        "name": st.just("fuzz"),
        "inputs": st.just({"n": {"type": "Int", "default": 1}}),
        "nodes": st.dictionaries(st.sampled_from(IDS), nodes, max_size=4),
        "outputs": st.dictionaries(
            st.sampled_from(["o", "p"]), references.filter(lambda r: isinstance(r, str))
        ),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.booleans())
def test_validate_reports_instead_of_raising(document: dict[str, Any], convert: bool) -> None:
    for diagnostic in validate(document, CATALOG, insert_conversions=convert):
        assert diagnostic.code.startswith("RW") and diagnostic.message
