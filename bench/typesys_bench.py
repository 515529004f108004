"""Benchmark of typesys: assignability, unification and runtime checks.

Run: `.venv/bin/python -m bench.typesys_bench` (or `python bench/typesys_bench.py`). Prints each number and
whether its target (issue 2) is met:

- `is_assignable` on 1,000 realistic type pairs, with the registry's cache: under 10 microseconds per pair;
- unification of a 50-port graph (reported; no target);
- `check` of a 100,000-element `List[Int]`: sampled under 1 ms, full under 50 ms.

typesys does no Ray work, so there is no raw-Ray baseline to compare against here.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typesys import Type, TypeRegistry, TypeVar, check, is_assignable, parse, unify

_PORT_TYPES = (
    "Int",
    "Float",
    "Number",
    "String",
    "Bool",
    "Bytes",
    "Any",
    "Int | Null",
    "String | Null",
    "List[Int]",
    "List[Float]",
    "List[Number]",
    "List[String]",
    "List[Int | Null]",
    "Dict[String, Any]",
    "Dict[String, Float]",
    "Dict[String, List[Int]]",
    "Tuple[Int, String]",
    "Tuple[Float, Float]",
    "{name: String, age: Int}",
    "{name: String, age?: Int}",
    "{name: String}",
    "{id: Int, name: String, tags: List[String], score: Float | Null}",
    "{id: Int, score: Number | Null}",
    "List[{name: String, age: Int}]",
    "List[{name: String}]",
    "Table",
    "Table[x: Float]",
    "Table[x: Float, y: String]",
    "Table[x: Float, y: String, z: Int | Null]",
    "NDArray",
    "NDArray[float32, 4]",
    "NDArray[float32]",
    "Model",
    "Model[sklearn]",
    "Image",
    "Photo",
    "List[Image]",
)


def _registry() -> TypeRegistry:
    registry = TypeRegistry.default()
    image = registry.register_type("Image", parse("Bytes"))
    registry.register_type("Photo", image)
    return registry


def _per_call(fn: Callable[[], object], repeat: int) -> float:
    """Best-of-5 mean seconds per call of `fn`."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        runs.append((time.perf_counter() - start) / repeat)
    return min(runs)


def bench_assignability() -> dict[str, float]:
    """Mean microseconds per pair over 1,000 pairs: cached (warm), first sight (cold) and without cache."""
    registry = _registry()
    types = [parse(t, registry) for t in _PORT_TYPES]
    rng = random.Random(2026)
    # Realistic mix: half of the pairs are related (a type and one of its supertypes or itself).
    pairs: list[tuple[Type, Type]] = []
    while len(pairs) < 1000:
        a, b = rng.choice(types), rng.choice(types)
        if len(pairs) % 2 == 0 and not is_assignable(a, b, registry):
            continue
        pairs.append((a, b))
    assignable = sum(bool(is_assignable(a, b, registry)) for a, b in pairs)

    fresh = _registry()
    start = time.perf_counter()
    for a, b in pairs:
        fresh.is_assignable(a, b)
    cold = (time.perf_counter() - start) / len(pairs)

    def warm_pass() -> None:
        for a, b in pairs:
            registry.is_assignable(a, b)

    def uncached_pass() -> None:
        for a, b in pairs:
            is_assignable(a, b)

    warm = _per_call(warm_pass, 20) / len(pairs)
    uncached = _per_call(uncached_pass, 3) / len(pairs)
    return {
        "warm_us": warm * 1e6,
        "cold_us": cold * 1e6,
        "uncached_us": uncached * 1e6,
        "assignable": assignable,
    }


def bench_unification() -> dict[str, float]:
    """Unify the 50 port pairs of a 25-node generic graph (each node renamed apart)."""
    shapes = [
        ("List[Int]", "List[{v}]"),
        ("Dict[String, List[Float]]", "Dict[String, List[{v}]]"),
        ("Tuple[Int, String]", "Tuple[{v}, String]"),
        ("{name: String, score: Float | Null}", "{name: {v}, score: Float | Null}"),
        ("Int | Null", "{v} | Null"),
    ]
    pairs: list[tuple[Type, Type]] = []
    for node in range(25):
        for port in range(2):
            source, target = shapes[(node + port) % len(shapes)]
            var = f"T{node}{port}"
            pairs.append((parse(source), parse(target.replace("{v}", var))))
    assert len(pairs) == 50
    solution = unify(pairs)
    assert all(isinstance(k, str) and not isinstance(v, TypeVar) for k, v in solution.items())
    per_graph = _per_call(lambda: unify(pairs), 20)
    return {"graph_ms": per_graph * 1e3, "variables": float(len(solution))}


def bench_check() -> dict[str, float]:
    """Check a 100,000-element List[Int]: sampled (100) and full."""
    values = list(range(100_000))
    t = parse("List[Int]")
    sampled = _per_call(lambda: check(values, t), 50)
    full = _per_call(lambda: check(values, t, full=True), 5)
    mixed = [i if i % 2 else float(i) for i in range(100_000)]
    number = parse("List[Number]")
    full_number = _per_call(lambda: check(mixed, number, full=True), 3)
    return {"sampled_ms": sampled * 1e3, "full_ms": full * 1e3, "full_number_ms": full_number * 1e3}


def _line(label: str, value: float, unit: str, target: float | None) -> str:
    if target is None:
        return f"{label:<48} {value:10.3f} {unit}"
    verdict = "MET" if value < target else "MISSED"
    return f"{label:<48} {value:10.3f} {unit}  target < {target:g} {unit}: {verdict}"


def main() -> int:
    """Run every benchmark, print the numbers; exit status 1 when a target is missed."""
    a = bench_assignability()
    u = bench_unification()
    c = bench_check()
    lines = [
        f"typesys benchmark (Python {sys.version.split()[0]})",
        _line("is_assignable, 1,000 pairs, cached (per pair)", a["warm_us"], "us", 10),
        _line("is_assignable, first sight (per pair)", a["cold_us"], "us", None),
        _line("is_assignable, no registry cache (per pair)", a["uncached_us"], "us", None),
        f"{'  pairs assignable':<48} {int(a['assignable']):10d} of 1000",
        _line("unify, 50-port graph", u["graph_ms"], "ms", None),
        _line("check List[Int] x 100,000, sampled", c["sampled_ms"], "ms", 1),
        _line("check List[Int] x 100,000, full", c["full_ms"], "ms", 50),
        _line("check List[Number] x 100,000 (int/float), full", c["full_number_ms"], "ms", None),
    ]
    print("\n".join(lines))
    met = a["warm_us"] < 10 and c["sampled_ms"] < 1 and c["full_ms"] < 50
    print("all targets met" if met else "some targets missed")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
