"""Start-up benchmark: rayweave's embedded start and first run against a plain `ray.init` and raw Ray's first run.

Run: `python -m bench.startup_bench [--rounds N]` (about three minutes on a 2-core machine; not part of the tests).
Every measurement is a fresh process (a start-up cannot be repeated in one), the two sides take turns round by
round, and each figure is the median of the rounds (issue 17, "Start-up"):

(a) start   process start to ready: `import ray; ray.init(num_cpus=2)` (loopback environment, token auth on, as
            Ray 2.60 has it by default) against `import engine` + `ensure_ray` + `RayExecutor.for_settings`
            (what `engine.run` does before it compiles; the run coordinator may still be coming up).
(b) first   the first 1,000-node fan-out run after the start, optimizer off (bench/engine_bench.py's W1,
            compiled beforehand; the compile time is printed apart) against raw Ray's first equivalent run.
    total   process start to the first fan-out result (start + compile + first run): the fair figure; and the
            same without the time `ray.init` took, which varies by about 1 s from one start to the next here
            (Ray polls for its raylet's registration), so that what rayweave adds shows through that noise.
(c) CLI     `rayweave run examples/quickstart.py --json` wall time: cold (starting an embedded Ray), and
            reusing a local Ray started once with `rayweave ray start` (its time is not counted).

A child process prints one JSON line of its timings; the parent only spawns and collects, so what it imports
costs the children nothing. The machine may be shared: compare ratios and before/after taken in the same run;
`--before DIR` (a checkout of an older commit, e.g. `git worktree add /tmp/before HEAD~3`) adds its rayweave as a
third side, taking turns with the other two (imports resolve to DIR through PYTHONPATH, in Ray's workers too).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 5
NUM_CPUS = 2
FAN_OUT = 1000
ROOT = Path(__file__).resolve().parents[1]
#: The `rayweave` command, as a user runs it.
RAYWEAVE = [sys.executable, "-c", "from serve.cli import main; main()"]
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def _plus_one(i: int) -> int:
    return i + 1


def _sum_all(*xs: int) -> int:
    return sum(xs)


def child_raw(started: float) -> dict[str, float]:
    """Raw Ray: `ray.init` to ready, then its first fan-out run."""
    import ray

    imported = time.perf_counter()
    ray.init(num_cpus=NUM_CPUS, _node_ip_address="127.0.0.1", include_dashboard=False)
    ready = time.perf_counter()
    ray_init = ready - imported
    tiny, add = ray.remote(_plus_one), ray.remote(_sum_all)
    total = ray.get(add.remote(*[tiny.remote(i) for i in range(FAN_OUT)]))
    done = time.perf_counter()
    assert total == sum(range(1, FAN_OUT + 1))
    ray.shutdown()
    return {
        "import": imported - started,
        "start": ready - started,
        "compile": 0.0,
        "first": done - ready,
        "total": done - started,
        "ray_init": ray_init,
        "added": done - started - ray_init,
    }


def child_rayweave(started: float, home: str) -> dict[str, float]:
    """rayweave: the embedded start (`ensure_ray`, executor, coordinator) to ready, then its first W1 run."""
    import engine
    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings
    from engine.compile import compile_workflow

    try:
        from engine.execution.ray.executor import RayExecutor
    except ModuleNotFoundError:  # a --before checkout older than the engine/execution/ray folder
        from engine.execution.executor import RayExecutor  # type: ignore[no-redef]

    imported = time.perf_counter()
    settings = Settings(home=Path(home), ray_num_cpus=NUM_CPUS)
    before_init = time.perf_counter()
    ensure_ray(settings)
    ray_init = time.perf_counter() - before_init
    executor = RayExecutor.for_settings(settings)  # as `engine.run` builds it
    ready = time.perf_counter()
    from bench.engine_bench import w1_workflow

    plan = compile_workflow(w1_workflow(FAN_OUT), optimize=False)
    compiled = time.perf_counter()
    result = engine.run(plan, settings=settings, executor=executor, cache=False)
    done = time.perf_counter()
    assert result.ok and result.outputs["total"] == sum(range(1, FAN_OUT + 1)), result.errors
    shutdown_ray()
    return {
        "import": imported - started,
        "start": ready - started,
        "compile": compiled - ready,
        "first": done - compiled,
        "total": done - started,
        "ray_init": ray_init,
        "added": done - started - ray_init,
    }


def _env(home: Path, tree: Path) -> dict[str, str]:
    env = {**os.environ, **LOOPBACK_ENV, "RAYWEAVE_HOME": str(home), "PYTHONPATH": str(tree)}
    env.pop("RAYWEAVE_RAY_ADDRESS", None)
    return env


def spawn(side: str, home: Path, tree: Path = ROOT) -> dict[str, float]:
    """One fresh child process measuring `side` ("raw" or "rayweave", the latter from the checkout `tree`)."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", side, "--home", str(home)],
        cwd=tree,
        env=_env(home, tree),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{side} child failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def cli_run(home: Path, tree: Path = ROOT) -> float:
    """Wall seconds of one `rayweave run examples/quickstart.py --json` in a fresh process (code of `tree`)."""
    started = time.perf_counter()
    done = subprocess.run(
        [*RAYWEAVE, "run", "examples/quickstart.py", "--json"],
        cwd=tree,
        env=_env(home, tree),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"rayweave run failed:\n{done.stderr[-3000:]}")
    return took


def ray_command(home: Path, verb: str) -> subprocess.CompletedProcess[str]:
    """`rayweave ray VERB` with RAYWEAVE_HOME=`home`."""
    return subprocess.run(
        [*RAYWEAVE, "ray", verb, "--num-cpus", str(NUM_CPUS)]
        if verb == "start"
        else [*RAYWEAVE, "ray", verb],
        cwd=ROOT,
        env=_env(home, ROOT),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def _print_table(sides: dict[str, list[dict[str, float]]]) -> None:
    raw = sides["raw Ray"]
    print(f"{'measure':<36}" + "".join(f"{name:>12}" for name in sides) + "  (ratio to raw Ray)")
    for key, label in (
        ("import", "imports (from process start)"),
        ("start", "(a) process start to ready"),
        ("compile", "    compile W1 (optimizer off)"),
        ("first", "(b) first 1,000-node fan-out run"),
        ("total", "    process start to first result"),
        ("ray_init", "    of which ray.init"),
        ("added", "    total without ray.init"),
    ):
        base = _median(raw, key)
        cells = [f"{_median(rows, key):>12.3f}" for rows in sides.values()]
        ratios = [f"{_median(rows, key) / base:.2f}x" for rows in list(sides.values())[1:]] if base else []
        print(f"{label:<36}" + "".join(cells) + "  " + " ".join(ratios))
    for name, rows in sides.items():
        per = " ".join(f"{row['start']:.2f}/{row['first']:.2f}/{row['total']:.2f}" for row in rows)
        print(f"  {name} per round (a)/(b)/total: {per}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--before", type=Path, help="A checkout of an older rayweave to measure beside.")
    parser.add_argument("--skip-cli", action="store_true", help="Only (a) and (b).")
    parser.add_argument("--child", choices=("raw", "rayweave"), help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        started = time.perf_counter()
        timings = child_raw(started) if args.child == "raw" else child_rayweave(started, args.home)
        print(json.dumps(timings))
        return

    base = Path(tempfile.mkdtemp(prefix="rayweave-startup-"))
    before: Path | None = args.before.resolve() if args.before else None
    sides: dict[str, list[dict[str, float]]] = {"raw Ray": [], "rayweave": []}
    if before:
        sides["before"] = []
    for round_ in range(args.rounds):
        sides["raw Ray"].append(spawn("raw", base / f"raw{round_}"))
        sides["rayweave"].append(spawn("rayweave", base / f"rw{round_}"))
        if before:
            sides["before"].append(spawn("rayweave", base / f"before{round_}", before))
    print(f"start-up, {args.rounds} rounds of fresh processes, num_cpus={NUM_CPUS}, median seconds")
    _print_table(sides)
    if not args.skip_cli:
        _cli_rounds(base, args.rounds, before)


def _cli_rounds(base: Path, rounds: int, before: Path | None) -> None:
    """(c): `rayweave run` cold, cold with the `before` checkout, and reusing a running local Ray."""
    times: dict[str, list[float]] = {"cold": [], "reusing a local Ray": []}
    if before:
        times["cold, before"] = []
    home = base / "cli"
    started = ray_command(home, "start")
    if started.returncode != 0:
        print(f"`rayweave ray start` failed; no reuse figures:\n{started.stderr[-2000:]}")
        del times["reusing a local Ray"]
    try:
        for round_ in range(rounds):
            times["cold"].append(cli_run(base / f"cli-cold{round_}"))  # a home where no Ray is recorded
            if "reusing a local Ray" in times:
                times["reusing a local Ray"].append(cli_run(home))
            if before:
                times["cold, before"].append(cli_run(base / f"cli-before{round_}", before))
    finally:
        if started.returncode == 0:
            ray_command(home, "stop")
    print("(c) rayweave run examples/quickstart.py --json, wall seconds (median; per round)")
    for name, spent in times.items():
        print(f"  {name:<22}{statistics.median(spent):>8.3f}   {' '.join(f'{t:.2f}' for t in spent)}")


if __name__ == "__main__":
    main()
