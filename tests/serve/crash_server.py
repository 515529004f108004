"""A real `rayweave serve` in a subprocess, for the server crash tests (tests/serve/test_serve_crash.py).

Each server has its own home (SQLite), its own embedded Ray on loopback (its own Ray temp dir), the crash-test
plugin (tests/serve/crash_plugin, loaded from `RAYWEAVE_PLUGIN_DIRS`) and fast recovery timings. `kill()`
SIGKILLs every process of it at once, like a power cut: its process group, every process below it (Ray workers
run in process groups of their own) and every process that carries its marker in its environment (a process
whose parent died meanwhile is no longer below it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

from cluster.actors import NAMESPACE
from engine.execution.ray.remote import COORDINATOR_NAME
from tests.engine.durable.cluster import _descendants, free_port
from tests.engine.durable.driver import ROOT, subprocess_env

#: The plugin whose `rwcrash/tick@1` node writes down every execution.
PLUGIN_DIR = Path(__file__).with_name("crash_plugin")
#: Recovery timings of the test servers: a dead coordinator's runs are resumed 6-7 s after its last heartbeat
#: (the production defaults are 60 s and 60 s).
FAST_RECOVERY = ("--recovery-stale-after", "6", "--recovery-start-grace", "8", "--recovery-interval", "1")
#: The environment variable that marks every process of a test server.
MARKER = "RAYWEAVE_CRASH_TEST_SERVER"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `predicate` until it returns something true (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _marked(marker: str) -> list[int]:
    """Processes whose environment carries `MARKER=marker` (Linux `/proc`; zombies have no environment)."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue  # exited meanwhile, or not ours
    return found


class ServeProcess:
    """`rayweave serve` for one installation home; `start()` (again after `kill()`), `kill()`, `close()`."""

    def __init__(self, home: Path, *, num_cpus: int = 4) -> None:
        self.home = home
        self.num_cpus = num_cpus
        self.marker = uuid.uuid4().hex
        # Short: Ray's unix socket paths under its temp dir must stay below ~107 characters.
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="rwsv", dir="/tmp"))
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.ray_address = ""
        self.starts = 0

    @property
    def output_path(self) -> Path:
        """Where the server's stdout and stderr go (one file per start)."""
        return self.ray_tmp / f"serve-{self.starts}.log"

    def output(self) -> str:
        """What the current (or last) server printed."""
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def start(self, timeout: float = 150.0) -> None:
        """Start the server and wait until it is ready, with its Ray, and has loaded the test plugin."""
        self.starts += 1
        port = free_port()
        env = {k: v for k, v in subprocess_env().items() if not k.startswith("RAYWEAVE_")}
        env.update(
            RAYWEAVE_HOME=str(self.home),
            RAYWEAVE_PLUGIN_DIRS=json.dumps([str(PLUGIN_DIR)]),
            RAYWEAVE_RAY_NUM_CPUS=str(self.num_cpus),
            RAY_TMPDIR=str(self.ray_tmp),
            PYTHONUNBUFFERED="1",
            **{MARKER: self.marker},
        )
        command = [sys.executable, "-c", "from serve.cli import main; main()", "serve", "--port", str(port)]
        with self.output_path.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, *FAST_RECOVERY],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the crash kills exactly this server
            )
        self.url = f"http://127.0.0.1:{port}"
        try:
            match = wait_for(self._started, timeout, "rayweave serve to print its addresses")
            self.ray_address = match.group(1)
            wait_for(self._ready, 60, "the server to be ready with the crash-test plugin")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the server said:\n{self.output()[-4000:]}") from None

    def _started(self) -> re.Match[str] | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"rayweave serve exited with {self.process.returncode}:\n{self.output()[-4000:]}"
            )
        return re.search(r"^Ray:\s+(\S+)$", self.output(), re.MULTILINE)

    def _ready(self) -> bool:
        try:
            with self.client(timeout=5) as c:
                ready = c.get("/v1/ready")
                return ready.status_code == 200 and c.get("/v1/nodes/rwcrash/tick@1").status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, timeout: float = 30) -> httpx.Client:
        """An HTTP client of the API with the installation's admin key."""
        key = (self.home / "admin.key").read_text().strip()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)

    def pids(self) -> set[int]:
        """Every live process of this server: marked ones and those below the server process."""
        found = set(_marked(self.marker))
        if self.process is not None:
            found |= {self.process.pid, *_descendants(self.process.pid)}
        return found

    def kill(self) -> None:
        """SIGKILL every process of this server at once (its Ray included), and wait until none is left."""
        deadline = time.monotonic() + 30
        while True:
            doomed = self.pids()
            if self.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            for pid in doomed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if self.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(10)
            if not _marked(self.marker):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"processes of the test server survived SIGKILL: {_marked(self.marker)}")
            time.sleep(0.2)
        self.process = None

    def close(self) -> None:
        """Kill the server and remove its Ray temp dir."""
        try:
            self.kill()
        finally:
            shutil.rmtree(self.ray_tmp, ignore_errors=True)


def ticks_doc(log: Path, seconds: Sequence[float]) -> dict[str, Any]:
    """A chain t0 -> t1 -> ... of `rwcrash/tick@1` nodes (node i sleeps `seconds[i]`) on input x: y = x + n."""
    nodes: dict[str, Any] = {}
    previous = "$inputs.x"
    for i, wait in enumerate(seconds):
        nodes[f"t{i}"] = {
            "type": "rwcrash/tick@1",
            "in": {"value": previous},
            "params": {"seconds": wait, "log": str(log)},
        }
        previous = f"t{i}"
    return {
        "format": "rayweave.workflow/1",
        "name": "crash-ticks",
        "inputs": {"x": {"type": "Int"}},
        "nodes": nodes,
        "outputs": {"y": previous},
    }


def submit(client: httpx.Client, doc: dict[str, Any], count: int) -> list[str]:
    """POST `count` runs of `doc` (inputs x = 0, 1, ...); each must be accepted (202). Their ids, in order."""
    ids = []
    for x in range(count):
        accepted = client.post("/v1/runs", json={"workflow": doc, "inputs": {"x": x}})
        assert accepted.status_code == 202, accepted.text
        ids.append(accepted.json()["id"])
    return ids


def lines(log: Path, run_id: str, node: str, kind: str) -> list[int]:
    """The pids written to `<run>.<node>.<kind>` (`started` or `done`): one per execution."""
    path = log / f"{run_id}.{node}.{kind}"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def done_counts(log: Path, run_ids: Iterable[str], nodes: Iterable[str]) -> dict[tuple[str, str], int]:
    """How many times each node of each run finished its body."""
    return {(r, n): len(lines(log, r, n, "done")) for r in run_ids for n in nodes}


class CoordinatorKiller:
    """A driver of its own, connected to the Ray at `ray_address` (with the cluster's token, as any operator's
    driver would), that `ray.kill`s the run coordinator actor when `kill()` is called: connected beforehand, so
    the kill lands at the moment the test chooses. Use it as a context manager."""

    def __init__(self, ray_address: str) -> None:
        code = (
            "import sys, ray\n"
            f"ray.init(address={ray_address!r}, log_to_driver=False)\n"
            "print('ready', flush=True)\n"
            "sys.stdin.readline()\n"
            f"ray.kill(ray.get_actor({COORDINATOR_NAME!r}, namespace={NAMESPACE!r}))\n"
            "print('killed', flush=True)\n"
        )
        env = {k: v for k, v in subprocess_env().items() if not k.startswith("RAYWEAVE_")}
        self.driver = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def __enter__(self) -> CoordinatorKiller:
        assert self.driver.stdout is not None
        assert self.driver.stdout.readline().strip() == "ready", "the driver could not join the server's Ray"
        return self

    def kill(self) -> None:
        """Kill the coordinator now; returns once Ray has done it."""
        assert self.driver.stdin is not None and self.driver.stdout is not None
        self.driver.stdin.write("kill\n")
        self.driver.stdin.flush()
        assert self.driver.stdout.readline().strip() == "killed"

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            if self.driver.stdin is not None:
                self.driver.stdin.close()
        try:
            self.driver.wait(30)
        except subprocess.TimeoutExpired:
            self.driver.kill()
            self.driver.wait(10)
