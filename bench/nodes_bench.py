"""Benchmarks of the node layer (issue 3, "Measurements").

1. Per-call overhead of the type-checked node wrapper against calling the plain function, for a node
   with scalar ports (``builtin/add@1``). Target: under 20 microseconds added per call. The "checked
   wrapper" is what the engine's task wrapper does around a node: check inputs and params, ``invoke``,
   check outputs. ``run_node`` (the test harness, which also installs a context and collects events) is
   shown too.
2. The SQL nodes on a generated 1,000,000-row Parquet file against the same DuckDB query run
   directly. Target: within 1.1x. Measured three ways:

   - in memory: the ``sql`` node against DuckDB querying the same Arrow table;
   - end to end through a table: ``read_parquet`` + ``sql`` nodes against DuckDB reading the file itself
     (the nodes first materialize the whole file as an Arrow table, which DuckDB fuses into its scan);
   - end to end, scanning the file in place: the ``sql_files`` node with ``files={"a": path}`` (projection
     and filter pushdown into DuckDB's Parquet scan) against DuckDB querying ``read_parquet(path)``.

   Every node side runs through ``run_node``, so it includes all the node does (input checks, a fresh
   locked-down connection, binding the tables or files, the query, the result as Arrow). The fixed cost
   of the node per call is shown on a 10-row table.

Run: ``.venv/bin/python bench/nodes_bench.py [--rows N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

QUERY = (
    "SELECT k, count(*) AS n, avg(v) AS mean_v, max(id) AS last_id FROM a WHERE v > 0.1 GROUP BY k ORDER BY k"
)


def _per_call_us(fn: Callable[[], Any], calls: int) -> float:
    """Microseconds per call of ``fn``: the best of 40 runs of ``calls / 40`` calls each.

    Many short runs rather than a few long ones, so that some fall between other processes' bursts; the
    minimum is the run least disturbed by the rest of the machine.
    """
    per_run = max(calls // 40, 1)
    return min(timeit.repeat(fn, number=per_run, repeat=40)) / per_run * 1e6


def bench_wrapper_overhead(number: int) -> dict[str, float]:
    """Microseconds per call: plain function, invoke only, checked wrapper, run_node."""
    from nodes.builtin.math import add
    from nodes.checking import check_inputs, check_outputs, check_params
    from nodes.testing import run_node

    plain = add.target
    spec = add.spec
    inputs = {"a": 1.5, "b": 2}
    params: dict[str, Any] = {}

    def checked() -> dict[str, Any]:
        check_inputs(spec, inputs)
        check_params(spec, params)
        outputs = add.invoke(inputs, params)
        check_outputs(spec, outputs)
        return outputs

    assert checked() == {"out": 3.5} and run_node(add, inputs).value == 3.5
    return {
        "plain": _per_call_us(lambda: plain(1.5, 2), number),
        "invoke": _per_call_us(lambda: add.invoke(inputs, params), number),
        "checked": _per_call_us(checked, number),
        "run_node": _per_call_us(lambda: run_node(add, inputs), number // 4),
    }


def _paired_s(
    baseline: Callable[[], Any], candidate: Callable[[], Any], repeats: int
) -> tuple[float, float, float, float, float]:
    """Interleaved runs of the pair: best baseline s, best candidate s, median of the per-round ratios,
    median baseline s, median candidate s.

    The two alternate (in alternating order) so both see the same machine load. On a small machine shared
    with other work the best time is the stable measure of a code path's own cost; the median ratio is
    reported alongside to show how much the load disturbed the pair.
    """
    baseline()  # warm up: imports, file cache, DuckDB's first connection
    candidate()
    base: list[float] = []
    cand: list[float] = []
    for i in range(repeats):
        order = ((base, baseline), (cand, candidate)) if i % 2 == 0 else ((cand, candidate), (base, baseline))
        for samples, fn in order:
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    median_ratio = statistics.median(c / b for b, c in zip(base, cand, strict=True))
    return min(base), min(cand), median_ratio, statistics.median(base), statistics.median(cand)


def _write_parquet(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "k": pa.array(np.char.add("key", rng.integers(0, 100, rows).astype(str))),
            "v": pa.array(rng.random(rows)),
        }
    )
    pq.write_table(table, path)


def _same(a: Any, b: Any) -> None:
    # Parallel aggregation sums floats in varying order, so means agree only to rounding.
    assert a.column_names == b.column_names and a.num_rows == b.num_rows, "the sql node and DuckDB disagree"
    for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True):
        assert x["k"] == y["k"] and x["n"] == y["n"] and x["last_id"] == y["last_id"]
        assert abs(x["mean_v"] - y["mean_v"]) <= 1e-9 * abs(y["mean_v"])


def bench_sql(rows: int, repeats: int) -> dict[str, float]:
    """Seconds of the SQL nodes and of DuckDB directly (in memory, end to end, sql_files), with ratios."""
    import duckdb
    import pyarrow.parquet as pq

    from nodes.builtin.data import read_parquet, sql
    from nodes.builtin.sql_files import sql_files
    from nodes.testing import run_node

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        _write_parquet(path, rows)
        file_query = QUERY.replace("FROM a", f"FROM read_parquet('{path}')")

        def direct_file() -> Any:
            con = duckdb.connect()
            try:
                return con.sql(file_query).to_arrow_table()
            finally:
                con.close()

        def nodes_file() -> Any:
            table = run_node(read_parquet, {"path": str(path)})["table"]
            return run_node(sql, {"a": table}, {"query": QUERY})["table"]

        def node_files() -> Any:
            return run_node(sql_files, {"files": {"a": str(path)}}, {"query": QUERY})["table"]

        table = pq.read_table(path)

        def direct_memory() -> Any:
            con = duckdb.connect()
            try:
                con.register("a", table)
                return con.sql(QUERY).to_arrow_table()
            finally:
                con.close()

        def node_memory() -> Any:
            return run_node(sql, {"a": table}, {"query": QUERY})["table"]

        _same(nodes_file(), direct_file())
        _same(node_memory(), direct_memory())
        _same(node_files(), direct_file())
        file_base, file_nodes, file_median, _, _ = _paired_s(direct_file, nodes_file, repeats)
        mem_base, mem_node, mem_median, _, _ = _paired_s(direct_memory, node_memory, repeats)
        scan_base, scan_node, scan_median, scan_base_med, scan_node_med = _paired_s(
            direct_file, node_files, repeats
        )

        # The node's fixed cost per call (checks, a locked-down connection), visible on a tiny table where
        # DuckDB's own work is small; it does not grow with the table, which is bound zero-copy.
        tiny = table.slice(0, 10)

        def direct_tiny() -> Any:
            con = duckdb.connect()
            try:
                con.register("a", tiny)
                return con.sql(QUERY).to_arrow_table()
            finally:
                con.close()

        tiny_base, tiny_node, *_ = _paired_s(
            direct_tiny, lambda: run_node(sql, {"a": tiny}, {"query": QUERY}), 100
        )
        return {
            "direct_tiny": tiny_base,
            "node_tiny": tiny_node,
            "direct_file": file_base,
            "nodes_file": file_nodes,
            "median_ratio_file": file_median,
            "direct_memory": mem_base,
            "node_memory": mem_node,
            "median_ratio_memory": mem_median,
            "direct_scan": scan_base,
            "node_scan": scan_node,
            "median_ratio_scan": scan_median,
            "median_direct_scan": scan_base_med,
            "median_node_scan": scan_node_med,
        }


def main() -> None:
    """Run both benchmarks and print numbers, ratios and whether the targets are met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()

    w = bench_wrapper_overhead(args.calls)
    added = w["checked"] - w["plain"]
    print("1. node wrapper overhead, builtin/add@1 (scalar ports), microseconds per call")
    print(f"   plain function          {w['plain']:8.2f}")
    print(f"   invoke (no checks)      {w['invoke']:8.2f}")
    print(f"   checked wrapper         {w['checked']:8.2f}   added {added:6.2f} us")
    print(f"   run_node (test harness) {w['run_node']:8.2f}   added {w['run_node'] - w['plain']:6.2f} us")
    print(f"   target: added < 20 us -> {'MET' if added < 20 else 'NOT MET'}")

    s = bench_sql(args.rows, args.repeats)
    ratio_file = s["nodes_file"] / s["direct_file"]
    ratio_mem = s["node_memory"] / s["direct_memory"]
    print(
        f"2. sql and sql_files nodes on a {args.rows:,}-row Parquet file, seconds (best of {args.repeats} "
        "interleaved runs; ratio of the bests, median of per-round ratios in brackets)"
    )
    print(
        f"   in memory:   DuckDB on the Arrow table {s['direct_memory']:.4f}   sql node {s['node_memory']:.4f}"
        f"   ratio {ratio_mem:.2f}x [{s['median_ratio_memory']:.2f}x]"
    )
    print(
        f"   fixed cost:  on a 10-row table DuckDB {s['direct_tiny'] * 1e3:.2f} ms, sql node "
        f"{s['node_tiny'] * 1e3:.2f} ms: the node adds {(s['node_tiny'] - s['direct_tiny']) * 1e6:.0f} us per call"
    )
    print(
        f"   end to end:  DuckDB on the file {s['direct_file']:.4f}   read_parquet+sql nodes "
        f"{s['nodes_file']:.4f}   ratio {ratio_file:.2f}x [{s['median_ratio_file']:.2f}x]"
    )
    print(
        f"   target: within 1.1x -> sql node {'MET' if ratio_mem <= 1.1 else 'NOT MET'}; end to end "
        f"{'MET' if ratio_file <= 1.1 else 'NOT MET'} (includes materializing the file as an Arrow table, "
        "which DuckDB fuses into its scan)"
    )
    ratio_scan = s["node_scan"] / s["direct_scan"]
    print(
        f"   sql_files:   DuckDB on read_parquet(path) median {s['median_direct_scan']:.4f}   "
        f"sql_files node with files={{'a': path}} median {s['median_node_scan']:.4f}   median of per-round "
        f"ratios {s['median_ratio_scan']:.2f}x (bests {s['direct_scan']:.4f} / {s['node_scan']:.4f}: "
        f"{ratio_scan:.2f}x)"
    )
    print(
        f"   target: within 1.1x -> sql_files node "
        f"{'MET' if s['median_ratio_scan'] <= 1.1 else 'NOT MET'} (judged on the median of per-round ratios)"
    )


if __name__ == "__main__":
    main()
