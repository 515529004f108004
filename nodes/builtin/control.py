"""Control flow: constants, branches (``if_else``, ``switch``, ``gate``), ``merge``, ``map``, ``reduce``,
``fail`` and ``sleep``.

Branching works through the ``SKIP`` sentinel: an output port whose branch is not taken carries ``SKIP``,
and every node downstream of it is skipped, until a node that accepts skips (``merge``) picks the first
value that did arrive.
"""

from __future__ import annotations

import math as _pymath
import time
from typing import Any, Generic, TypedDict, TypeVar, cast

from nodes import node
from nodes.builtin.errors import ControlNodeCalledError, InputValueError, IntentionalFailure, ParamValueError
from nodes.skip import SKIP

T = TypeVar("T")
U = TypeVar("U")

# SKIP travels through ports of any type; typing it as Any here keeps the node signatures honest
# (``-> T``) without teaching the type checker about the sentinel.
_SKIP: Any = SKIP

SWITCH_CASES = 8
"""Number of ``case_N`` output ports of ``switch`` (ports are static, so the count is fixed)."""


@node(plugin="builtin", version="1.0.0", category="control", tags=("control",), cheap=True)
def constant(*, value: Any) -> Any:
    """Produce the ``value`` param unchanged: a literal in the graph.

    Args:
        value: any JSON value (number, string, boolean, list, object or null), required; it is the node's
            output, unchanged.

    Returns:
        out: the ``value`` param, with the type Any (wire it into typed ports; no input is needed to run it).

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "constant-demo",
          "nodes": {"ten": {"type": "builtin/constant@1", "params": {"value": 10}}},
          "outputs": {"ten": "ten"}
        }
        ```
    """
    return value


# The output TypedDicts are generic so their fields share the node's type variable ``T``; the return
# annotations name them unsubscripted, because the SDK reads the field hints (``T``) from the class itself.
class Branches(TypedDict, Generic[T]):
    """Outputs of ``if_else``: the taken branch carries the value, the other one ``SKIP``."""

    true: T
    false: T


@node(plugin="builtin", version="1.0.0", category="control", tags=("control", "branch"), cheap=True)
def if_else(cond: bool, value: T) -> Branches:  # type: ignore[type-arg]
    """Route ``value`` to output ``true`` when ``cond`` holds, else to output ``false``.

    The untaken output is ``SKIP``, so the nodes wired to it are skipped; join the branches again with
    ``merge``.

    Args:
        cond: the condition (a Bool): true takes branch ``true``, false takes branch ``false``.
        value: the value sent down the taken branch, of any type; it is passed on unchanged.

    Returns:
        true: ``value`` when ``cond`` is true; ``SKIP`` (skipping every node wired to it) when it is false.
        false: ``value`` when ``cond`` is false; ``SKIP`` (skipping every node wired to it) when it is true.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "summary-or-head",
          "inputs": {"path": {"type": "String"}, "summarize": {"type": "Bool"}},
          "nodes": {
            "load": {"type": "builtin/read_csv@1", "in": {"path": "$inputs.path"}},
            "branch": {"type": "builtin/if_else@1", "in": {"cond": "$inputs.summarize", "value": "load.table"}},
            "summary": {"type": "builtin/describe@1", "in": {"table": "branch.true"}},
            "head": {"type": "builtin/sql@1", "in": {"a": "branch.false"},
                     "params": {"query": "SELECT * FROM a LIMIT 10"}},
            "result": {"type": "builtin/merge@1", "in": {"a": "summary.table", "b": "head.table"}}
          },
          "outputs": {"result": "result.out"}
        }
        ```
    """
    if cond:
        return {"true": value, "false": _SKIP}
    return {"true": _SKIP, "false": value}


class SwitchOutputs(TypedDict, Generic[T]):
    """Outputs of ``switch``: ``case_N`` carries the value when ``key == cases[N]``; all others ``SKIP``."""

    case_0: T
    case_1: T
    case_2: T
    case_3: T
    case_4: T
    case_5: T
    case_6: T
    case_7: T
    default: T


@node(plugin="builtin", version="1.0.0", category="control", tags=("control", "branch"), cheap=True)
def switch(key: str, value: T, *, cases: list[str]) -> SwitchOutputs:  # type: ignore[type-arg]
    """Route ``value`` to output ``case_N`` where ``cases[N] == key``, or to ``default`` when none matches.

    Node ports are static, so there are always eight case outputs (``case_0`` .. ``case_7``) plus
    ``default``; ``cases`` names at most eight keys, in output order. Every output that is not taken is
    ``SKIP``; chain a second ``switch`` on ``default`` for more than eight cases.

    Args:
        key: the String compared, exactly and case-sensitively, with each entry of ``cases``.
        value: the value sent to the chosen output, of any type; it is passed on unchanged.
        cases: up to eight distinct keys (required); ``cases[N]`` selects output ``case_N``. More than eight
            entries or a repeated key fail the node; outputs beyond ``len(cases)`` are always ``SKIP``.

    Returns:
        case_0: ``value`` when ``key == cases[0]``, else ``SKIP`` (nodes wired to it are skipped).
        case_1: ``value`` when ``key == cases[1]``, else ``SKIP`` (nodes wired to it are skipped).
        case_2: ``value`` when ``key == cases[2]``, else ``SKIP`` (nodes wired to it are skipped).
        case_3: ``value`` when ``key == cases[3]``, else ``SKIP`` (nodes wired to it are skipped).
        case_4: ``value`` when ``key == cases[4]``, else ``SKIP`` (nodes wired to it are skipped).
        case_5: ``value`` when ``key == cases[5]``, else ``SKIP`` (nodes wired to it are skipped).
        case_6: ``value`` when ``key == cases[6]``, else ``SKIP`` (nodes wired to it are skipped).
        case_7: ``value`` when ``key == cases[7]``, else ``SKIP`` (nodes wired to it are skipped).
        default: ``value`` when ``key`` is none of the ``cases``, else ``SKIP`` (nodes wired to it are skipped).

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "read-by-format",
          "inputs": {"format": {"type": "String"}, "path": {"type": "String"}},
          "nodes": {
            "route": {"type": "builtin/switch@1", "in": {"key": "$inputs.format", "value": "$inputs.path"},
                      "params": {"cases": ["csv", "parquet"]}},
            "csv": {"type": "builtin/read_csv@1", "in": {"path": "route.case_0"}},
            "parquet": {"type": "builtin/read_parquet@1", "in": {"path": "route.case_1"}},
            "table": {"type": "builtin/merge@1", "in": {"a": "csv.table", "b": "parquet.table"}}
          },
          "outputs": {"table": "table.out"}
        }
        ```
    """
    if len(cases) > SWITCH_CASES:
        raise ParamValueError(
            f"builtin/switch@1: param 'cases' has {len(cases)} entries but switch has {SWITCH_CASES} case "
            "outputs; chain a second switch on the default output for more"
        )
    if len(set(cases)) != len(cases):
        raise ParamValueError(f"builtin/switch@1: param 'cases' {cases} repeats a key; keys must be distinct")
    out: dict[str, Any] = {f"case_{i}": _SKIP for i in range(SWITCH_CASES)}
    out["default"] = _SKIP
    port = f"case_{cases.index(key)}" if key in cases else "default"
    out[port] = value
    return out  # type: ignore[return-value]


@node(
    plugin="builtin",
    version="1.0.0",
    category="control",
    tags=("control", "branch"),
    accepts_skipped=True,
    cheap=True,
)
def merge(a: T | None = None, b: T | None = None, c: T | None = None, d: T | None = None) -> T:
    """The first of ``a``, ``b``, ``c``, ``d`` that was not skipped; joins the branches of ``if_else``/``switch``.

    Unwired inputs are null and are passed over like skipped ones, so a null value counts as absent. When
    every input is skipped or null, ``merge`` is itself skipped. It is the one built-in node that accepts
    skipped inputs.

    Args:
        a: first candidate, usually one branch's result (optional, default null); ``SKIP`` or null passes
            to the next one.
        b: second candidate, used when ``a`` is skipped or null (optional, default null).
        c: third candidate, used when ``a`` and ``b`` are skipped or null (optional, default null).
        d: fourth candidate, used when ``a``, ``b`` and ``c`` are skipped or null (optional, default null).

    Returns:
        out: the first input, in the order a, b, c, d, that is neither skipped nor null; ``SKIP`` (so
            ``merge`` and everything downstream is skipped) when all four are skipped or null.
    """
    for value in (a, b, c, d):
        if value is not SKIP and value is not None:
            return value
    return cast(T, SKIP)


@node(plugin="builtin", version="1.0.0", category="control", tags=("control", "branch"), cheap=True)
def gate(value: T, open: bool) -> T:
    """Pass ``value`` through when ``open`` is true; otherwise output ``SKIP`` so downstream nodes are skipped.

    Args:
        value: the value to pass, of any type; it is passed on unchanged.
        open: whether the gate is open (a Bool): true passes ``value``, false skips downstream.

    Returns:
        out: ``value`` when ``open`` is true; ``SKIP`` (skipping every node wired to it) when it is false.
    """
    return value if open else cast(T, SKIP)


@node(
    "map", plugin="builtin", version="1.0.0", category="control", tags=("control", "parallel"), control="map"
)
def map_items(items: list[T], *, workflow: dict[str, Any]) -> list[U]:
    """Run the sub-workflow ``workflow`` once per element of ``items``, in parallel, collecting ``out`` in order.

    ``workflow`` is a workflow document (``"format": "rayweave.workflow/1"``) with an input ``item`` (and
    optionally ``index``, the element's position) and an output ``out``. The engine expands this node itself
    (spec ``control="map"``); it cannot be called as a plain function.

    Args:
        items: the elements; each becomes the sub-workflow's input ``item`` (its type must fit that input's
            type, which the compiler checks; an implicit coercion such as ``Int -> Float`` is applied to
            each element, and an element it cannot convert fails the node with a ``PortTypeError``).
        workflow: the sub-workflow document run per element (required). It must declare an input ``item``
            and an output ``out``; an input ``index`` (Int), if declared, receives the element's 0-based
            position, and any other input needs a default.

    Returns:
        out: the sub-workflow's output ``out`` for each element, in the order of ``items`` (whatever order
            the runs finish in).

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "squares",
          "inputs": {"numbers": {"type": "List[Int]"}},
          "nodes": {
            "squares": {"type": "builtin/map@1", "in": {"items": "$inputs.numbers"}, "params": {"workflow": {
              "format": "rayweave.workflow/1", "name": "square",
              "inputs": {"item": {"type": "Int"}},
              "nodes": {"sq": {"type": "builtin/multiply@1", "in": {"a": "$inputs.item", "b": "$inputs.item"}}},
              "outputs": {"out": "sq.out"}
            }}}
          },
          "outputs": {"squares": "squares.out"}
        }
        ```
    """
    raise ControlNodeCalledError(
        "builtin/map@1 is expanded by the engine (control='map') and cannot be called directly; "
        "run it inside a workflow with engine.run, or call the sub-workflow yourself for each item"
    )


_REDUCE_OPS = ("sum", "product", "min", "max", "concat", "and", "or", "first", "last")


@node(plugin="builtin", version="1.0.0", category="control", tags=("control",), cheap=True)
def reduce(items: list[T], *, op: str) -> T:
    """Combine all elements of a list with ``op``.

    Args:
        items: the list to combine, from first to last element; it may be empty only for ``sum``,
            ``product``, ``and`` and ``or``.
        op: the combination (required): ``sum``, ``product`` (numbers; 0 and 1 for an empty list), ``min``,
            ``max``, ``concat`` (strings or lists), ``and``, ``or`` (booleans; true and false for an empty list),
            ``first`` or ``last``. Any other name fails the node.

    Returns:
        out: the combined value: a sum or product (an Int when every element is an Int, else a Float), the
            smallest or largest element, the joined string or list, a Bool for ``and``/``or``, or the first or
            last element. Fails when the elements do not suit ``op`` (e.g. ``sum`` of strings, ``min`` of
            incomparable values) or the list is empty for an op without an identity.
    """
    if op not in _REDUCE_OPS:
        raise ParamValueError(f"builtin/reduce@1: param 'op' is {op!r}; use one of {', '.join(_REDUCE_OPS)}")
    xs: list[Any] = items
    result: Any
    if op in ("sum", "product"):
        if not all(isinstance(x, int | float) for x in xs):
            raise InputValueError(
                f"builtin/reduce@1: op {op!r} needs numbers in input port 'items'; got element types "
                f"{sorted({type(x).__name__ for x in xs})} (use op 'concat' for strings and lists)"
            )
        if op == "product":
            result = _pymath.prod(xs)
        else:
            # fsum keeps float sums exact to the last bit; ints stay ints.
            result = _pymath.fsum(xs) if any(isinstance(x, float) for x in xs) else sum(xs)
    elif op == "and":
        result = all(items)
    elif op == "or":
        result = any(items)
    elif not items:
        raise InputValueError(
            f"builtin/reduce@1: input port 'items' is an empty list and op {op!r} has no identity; "
            "use an op with one (sum, product, and, or) or guard against empty lists"
        )
    elif op == "concat":
        result = _concat(items)
    elif op == "min":
        result = _ordered("min", items)
    elif op == "max":
        result = _ordered("max", items)
    else:
        result = items[0] if op == "first" else items[-1]
    return result  # type: ignore[no-any-return]


def _ordered(op: str, items: list[Any]) -> Any:
    try:
        return min(items) if op == "min" else max(items)
    except TypeError as exc:
        raise InputValueError(
            f"builtin/reduce@1: elements of 'items' cannot be compared for {op}: {exc}"
        ) from exc


def _concat(items: list[Any]) -> Any:
    if all(isinstance(x, str) for x in items):
        return "".join(items)
    if all(isinstance(x, list) for x in items):
        return [y for x in items for y in x]
    raise InputValueError(
        "builtin/reduce@1: op 'concat' needs a list of strings or a list of lists in input port 'items'; "
        f"got element types {sorted({type(x).__name__ for x in items})}"
    )


@node(plugin="builtin", version="1.0.0", category="control", tags=("control", "testing"), cache=False)
def fail(value: Any = None, *, message: str = "failed on purpose") -> Any:
    """Always raise ``IntentionalFailure`` with ``message``; for testing failure handling and retries.

    Args:
        value: ignored (optional, default null); wire something to place the failure after another node.
        message: the error message (default ``"failed on purpose"``), reported as
            ``builtin/fail@1: <message>``.

    Returns:
        out: never produced: every attempt fails, so nodes wired to it never run.
    """
    raise IntentionalFailure(f"builtin/fail@1: {message}")


@node(
    plugin="builtin",
    version="1.0.0",
    category="control",
    tags=("control", "testing"),
    cache=False,
    io_bound=True,  # it only waits: on Ray it runs on the warm pool of threaded actors
)
def sleep(value: T, *, seconds: float) -> T:
    """Wait ``seconds`` and pass ``value`` through unchanged; for testing timeouts and parallelism.

    Never cached, so every run really waits.

    Args:
        value: the value to pass through, of any type.
        seconds: how long to wait, in seconds (required; fractions allowed, 0 does not wait); negative
            or NaN fails the node.

    Returns:
        out: ``value``, unchanged, once the wait is over.
    """
    if seconds < 0 or _pymath.isnan(seconds):
        raise ParamValueError(f"builtin/sleep@1: param 'seconds' is {seconds}; use a number >= 0")
    time.sleep(seconds)
    return value
