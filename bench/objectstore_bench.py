"""Result store throughput: writing and reading a 100 MB Arrow table on local disk and in an S3-compatible store.

    .venv/bin/python bench/objectstore_bench.py [--mb 100] [--repeat 3]

Both sides go through the same code (`engine.durable.results.ResultStore` over `nodes.objectstore`): `put` a
one-port result holding the table (Arrow IPC), then `get` it back. The S3 side is moto's S3 server
(`moto_server`, from the test extra) started as a separate process on 127.0.0.1, so it does not share this
process's interpreter; it keeps objects in memory, so the figures say what the S3 path costs here (HTTP,
multi-part upload, the temporary-key copy of `meta.json`), not what a real bucket over a network gives.
Prints the median of `--repeat` rounds of each, in MB/s, and the ratio local / S3.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pyarrow as pa

from engine.durable.results import ResultStore
from nodes.ids import RunId
from nodes.objectstore import Location, S3Options

BUCKET = "bench"


def _table(megabytes: int) -> pa.Table:
    rows = megabytes * 1024 * 1024 // 16  # two 8-byte columns
    rng = np.random.default_rng(7)
    return pa.table({"id": np.arange(rows, dtype=np.int64), "value": rng.random(rows)})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    server.kill()
    raise SystemExit("moto_server did not start; install the test extra (moto[server])")


def _measure(results: ResultStore, table: pa.Table, repeat: int) -> tuple[float, float]:
    """Median seconds of one put and one get of `table`."""
    writes, reads = [], []
    for round_ in range(repeat):
        run = RunId(f"bench-{round_}")
        started = time.perf_counter()
        results.put(run, "table", {"out": table})
        writes.append(time.perf_counter() - started)
        started = time.perf_counter()
        back = results.get(run, "table")["out"]
        reads.append(time.perf_counter() - started)
        assert back.num_rows == table.num_rows
        results.delete_run(run)
    return statistics.median(writes), statistics.median(reads)


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="Size of the table's data in MB.")
    parser.add_argument("--repeat", type=int, default=3, help="Rounds of each measurement (median shown).")
    args = parser.parse_args()
    table = _table(args.mb)
    size = table.nbytes / 1e6
    server, endpoint = _start_moto()
    try:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        options = S3Options(
            endpoint_url=endpoint, access_key_id="k", secret_access_key="s", request_timeout_s=120
        )
        with tempfile.TemporaryDirectory(prefix="objectstore-bench-") as scratch:
            local = _measure(ResultStore(scratch), table, args.repeat)
        remote = _measure(
            ResultStore(Location(f"s3://{BUCKET}/results", "bench", options)), table, args.repeat
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"table: {table.num_rows} rows, {size:.0f} MB; median of {args.repeat} rounds")
    print(f"{'':8} {'write MB/s':>11} {'read MB/s':>10} {'write s':>8} {'read s':>7}")
    for name, (write, read) in (("local", local), ("s3", remote)):
        print(f"{name:8} {size / write:11.0f} {size / read:10.0f} {write:8.2f} {read:7.2f}")
    print(f"local/s3 {remote[0] / local[0]:11.1f}x {remote[1] / local[1]:9.1f}x")


if __name__ == "__main__":
    main()
