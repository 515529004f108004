"""The files backend for workflows (`RAYWEAVE_WORKFLOWS_DIR`) against the same store without it (SQLite).

    .venv/bin/python bench/workflow_files_bench.py [--workflows 100 1000]

For each count of workflows: the time to create one, to save a new version (50 saves), to read one (`get`, p50
and p95 of 300), and, on the files backend, for a read to take in a hand edit of a file (the edit becomes a
version). Each case gets a fresh temporary SQLite file and folder.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.store import open_store


def _doc(i: int) -> dict[str, Any]:
    return {
        "format": "rayweave.workflow/1",
        "name": f"wf-{i}",
        "inputs": {"a": {"type": "Int"}},
        "nodes": {"s": {"type": "builtin/add@1", "in": {"a": "$inputs.a", "b": {"value": i}}}},
        "outputs": {"t": "s"},
    }


def bench(count: int, files: bool) -> str:
    """One case's figures as a line of text."""
    tmp = Path(tempfile.mkdtemp())
    store = open_store(f"sqlite:///{tmp}/bench.db", workflows_dir=(tmp / "workflows") if files else None)
    start = time.perf_counter()
    ids = [store.workflows.create(_doc(i)).workflow_id for i in range(count)]
    create_ms = (time.perf_counter() - start) / count * 1000
    start = time.perf_counter()
    for i in range(50):
        store.workflows.save(ids[i], _doc(i + 1), expected_version=1)
    save_ms = (time.perf_counter() - start) / 50 * 1000
    reads = []
    for i in range(300):
        start = time.perf_counter()
        store.workflows.get(ids[i % count])
        reads.append((time.perf_counter() - start) * 1000)
    reads.sort()
    line = (
        f"{count} workflows, {'files ' if files else 'SQLite'}: create {create_ms:.2f} ms, save {save_ms:.2f} ms, "
        f"get p50 {statistics.median(reads):.2f} ms p95 {reads[int(len(reads) * 0.95)]:.2f} ms"
    )
    if files:
        path = tmp / "workflows" / f"{ids[3]}.yaml"
        path.write_text(path.read_text().replace("value: 3", "value: 33"))
        start = time.perf_counter()
        version = store.workflows.latest(ids[3])
        line += f", hand edit taken in by the next read {(time.perf_counter() - start) * 1000:.1f} ms"
        line += f" (version {version.version})"
    store.close()
    return line


def main() -> None:
    """Parse the command line and print one line per case."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workflows", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()
    for count in args.workflows:
        for files in (False, True):
            print(bench(count, files), flush=True)


if __name__ == "__main__":
    main()
