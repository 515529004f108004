"""A driver process for the crash tests: submits a durable run to a Ray cluster by address, prints the run id,
then waits for the run (the test kills it, or the cluster, meanwhile).

    python -m tests.engine.durable.driver --home H --log L --address 127.0.0.1:PORT [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from cluster.settings import Settings
from engine.durable import DurableRunner
from tests.engine.durable.flows import chain

#: The repository root: subprocesses run from it so `tests.*` and the packages import.
ROOT = Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, submit the run, print its id, wait for it."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--die-before-start",
        action="store_true",
        help="SIGKILL this process after recording the run, before starting it",
    )
    args = parser.parse_args(argv)
    settings = Settings(home=Path(args.home), ray_address=args.address)
    runner = DurableRunner(settings, heartbeat_s=0.2)
    if args.die_before_start:

        def die(*_: object, **__: object) -> None:
            print(runner.store.runs.list(limit=1).items[0].id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        runner._start = die
    handle = runner.submit(chain(Path(args.log), seconds=args.seconds, slow="b"), {"x": 1})
    print(handle.run_id, flush=True)
    print(handle.result().status, flush=True)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a driver subprocess: loopback Ray, token auth, the repository importable."""
    env = dict(os.environ)
    env.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.update(extra)
    return env


def start_driver(
    home: Path, log: Path, address: str, seconds: float, *, die_before_start: bool = False
) -> subprocess.Popen[str]:
    """Start `main` in a subprocess (read its first stdout line for the run id); its stderr goes to
    `driver_stderr(home)`, for the message of a test whose driver printed nothing."""
    command = [sys.executable, "-m", "tests.engine.durable.driver", "--home", str(home), "--log", str(log)]
    command += ["--address", address, "--seconds", str(seconds)]
    if die_before_start:
        command.append("--die-before-start")
    errors = driver_stderr(home)
    errors.parent.mkdir(parents=True, exist_ok=True)
    with errors.open("w") as sink:
        return subprocess.Popen(
            command, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=sink, text=True
        )


def driver_stderr(home: Path) -> Path:
    """Where `start_driver` writes the driver's stderr."""
    return home.parent / f"{home.name}-driver.stderr"


def no_run_id(home: Path) -> str:
    """The message of a driver that printed no run id: the end of its stderr."""
    path = driver_stderr(home)
    tail = path.read_text()[-3000:] if path.exists() else "(no stderr file)"
    return f"the driver printed no run id; its stderr ends:\n{tail}"


if __name__ == "__main__":
    main()
