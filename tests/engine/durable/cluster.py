"""A throwaway Ray head for crash test (3), separate from the session's Ray: started with `ray start --head
--block` in its own process group, so killing that group stops exactly this cluster (its GCS, raylet and
helpers; its workers exit when their raylet dies) and nobody else's."""

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

    def start(self, timeout: float = 60.0) -> None:
        """Start the head and wait until its GCS accepts connections."""
        ray = str(Path(sys.executable).with_name("ray"))
        command = [
            ray, "start", "--head", "--block", f"--port={self.port}", "--node-ip-address=127.0.0.1",
            "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={self.temp_dir}",
            f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test Ray head on port {self.port} did not start")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL every process of this cluster (the whole cluster crashes at once) and wait for its port."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None
        deadline = time.monotonic() + 20
        while _listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        """Kill the cluster and remove its temp dir."""
        self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
