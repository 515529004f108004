"""A throwaway Ray head for crash test (3), separate from the session's Ray: started with `ray start --head
--block` in its own session, so killing that process tree stops exactly this cluster (its GCS, raylet, helpers
and workers) and nobody else's."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.engine.durable.driver import ROOT, subprocess_env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(root: int) -> list[int]:
    """Every process below `root` in the process tree (Linux `/proc`)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may contain spaces and parentheses: the parent pid follows its last ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalCluster:
    """One Ray head on 127.0.0.1:`port` with 2 CPUs; `start()`, `kill()` (SIGKILL, like a crash), `start()` again."""

    def __init__(self) -> None:
        self.port = free_port()
        # Short: Ray's unix socket paths under the temp dir must stay below ~107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rw", dir="/tmp"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The GCS address drivers connect to."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0, attempts: int = 3) -> None:
        """Start the head and wait until its GCS accepts connections.

        Every port the head opens is chosen free here (other Rays run on this machine too); a start that still
        loses a port race is tried again with new ports (the GCS port stays: drivers know it).
        """
        for attempt in range(1, attempts + 1):
            if self._start_once(timeout, attempt):
                return
        log = (self.temp_dir / "ray-start.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the test Ray head on port {self.port} did not start; ray start said:\n{log}")

    def _start_once(self, timeout: float, attempt: int) -> bool:
        ray = str(Path(sys.executable).with_name("ray"))
        ports = {
            name: free_port()
            for name in (
                "ray-client-server-port", "dashboard-port", "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port",
                "node-manager-port", "object-manager-port",
            )
        }  # fmt: skip
        command = [
            ray, "start", "--head", "--block", f"--port={self.port}", "--node-ip-address=127.0.0.1",
            "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={self.temp_dir}",
            *(f"--{name}={port}" for name, port in ports.items()),
        ]  # fmt: skip
        with (self.temp_dir / "ray-start.log").open("a") as log:
            log.write(f"--- attempt {attempt}: {' '.join(command)}\n")
            log.flush()
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=subprocess_env(), stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                return False
            time.sleep(0.2)
        return True

    def kill(self) -> None:
        """SIGKILL every process of this cluster at once, workers included (like `ray stop --force`, but only
        this cluster), and wait for its port to close."""
        if self.process is None:
            return
        # Workers run in process groups of their own: find them as descendants of the head before killing.
        doomed = _descendants(self.process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None
        deadline = time.monotonic() + 20
        while _listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        """Kill the cluster and remove its temp dir."""
        self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
