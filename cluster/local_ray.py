"""A local Ray kept running between commands (`rayweave ray start|status|stop`), so runs skip the start.

Starting the embedded Ray costs about 3 s of every `rayweave run`. `rayweave ray start` starts that same Ray
(`ensure_ray`: loopback only, token authentication on) in a background process of its own, which holds it until
`rayweave ray stop`, and records its address and process id in `{home}/ray.json` (mode 0600). While it runs,
`ensure_ray` with no Ray address configured connects to it instead of starting a Ray of its own
(`recorded_ray`); a record whose process is gone, or whose address no longer answers, is ignored. The record
holds no secret: the token stays where Ray keeps it (`~/.ray/auth_token`), and a process joining the recorded
Ray runs with `RAY_AUTH_MODE=token`, so it is refused without the token as any other client is. The record and
its reading (`LocalRay`, `record_path`, `recorded_ray`) live in `cluster.ray_record`, which `ensure_ray` imports
too, and are re-exported here.

Only a loopback address is ever recorded or joined: this is this machine's Ray, as the embedded one is.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cluster.errors import ClusterConnectionError
from cluster.ray_record import RECORD_NAME, LocalRay, process_alive, record_path, recorded_ray
from cluster.ray_runtime import ensure_ray, loopback_environment, shutdown_ray

__all__ = [
    "LOG_NAME",
    "RECORD_NAME",
    "LocalRay",
    "hold",
    "record_path",
    "recorded_ray",
    "start_local_ray",
    "stop_local_ray",
]

#: The held Ray's output (Ray's own logs are in its session folder, /tmp/ray/session_latest/logs).
LOG_NAME = "ray.log"


def start_local_ray(
    home: Path, num_cpus: int | None = None, timeout_s: float = 180.0
) -> tuple[LocalRay, bool]:
    """Start a local Ray held by a background process (see the module docstring), or find the running one.

    Returns the held Ray and whether this call started it. Raises `ClusterConnectionError` with the holder's
    output when it could not start Ray."""
    home = Path(home)
    running = recorded_ray(home)
    if running is not None:
        return running, False
    home.mkdir(parents=True, exist_ok=True)
    log = home / LOG_NAME
    env = {**os.environ, "RAYWEAVE_HOME": str(home)}
    env.update(loopback_environment())
    env.pop("RAYWEAVE_RAY_ADDRESS", None)  # the holder starts a Ray; it never joins one
    if num_cpus is not None:
        env["RAYWEAVE_RAY_NUM_CPUS"] = str(num_cpus)
    with log.open("ab") as out:
        # A session of its own: the holder outlives this command and a Ctrl-C in its terminal.
        holder = subprocess.Popen(
            [sys.executable, "-m", "cluster.local_ray", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        held = recorded_ray(home)
        if held is not None and held.pid == holder.pid:
            return held, True
        if holder.poll() is not None:
            raise ClusterConnectionError(
                f"the local Ray did not start (exit status {holder.returncode}); its output, in {log}, ends "
                f"with:\n{_tail(log)}"
            )
        time.sleep(0.1)
    holder.terminate()
    raise ClusterConnectionError(
        f"the local Ray did not start within {timeout_s:.0f} s; its output is in {log}:\n{_tail(log)}"
    )


def stop_local_ray(home: Path, timeout_s: float = 60.0) -> LocalRay | None:
    """Stop the local Ray held for `home` (its holder shuts Ray down); the stopped one, or None if none ran."""
    held = recorded_ray(home)
    if held is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(held.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while process_alive(held.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if process_alive(held.pid):
        raise ClusterConnectionError(
            f"the local Ray's holder (pid {held.pid}) did not stop within {timeout_s:.0f} s; stop it with "
            f"`kill {held.pid}`"
        )
    with contextlib.suppress(OSError):
        record_path(home).unlink()
    return held


def hold(home: Path) -> None:
    """The holder process: start the embedded Ray, record it, and keep it until SIGTERM or SIGINT."""
    from cluster.settings import Settings

    settings = Settings(home=home, ray_address="")
    connection = ensure_ray(settings, reuse_local=False)
    held = LocalRay(
        address=connection.address, pid=os.getpid(), num_cpus=settings.ray_num_cpus, started_at=time.time()
    )

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    path = record_path(home)
    try:
        _write_private(path, json.dumps(held.to_json()))
        print(f"local Ray at {held.address} held by pid {held.pid}", flush=True)
        while True:
            signal.pause()
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == held.pid:
                path.unlink()
        shutdown_ray()


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by this user only."""
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(partial, path)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


if __name__ == "__main__":
    hold(Path(sys.argv[1]))
