"""ML benchmark: a hyperparameter grid on the cluster against the same grid in one process, MLflow tracking
overhead, the ML plugin environment's cold start, and (with `--serving`) the serving section.

Run: `.venv/bin/python -m bench.ml_bench [--repeats 3] [--serving]` (about three minutes without serving). One
process starts a loopback Ray with `num_cpus=2` (this machine's cores), loads the first-party ML plugin
(`nodes/firstparty/ml`, its own runtime environment) and tracks to a fresh MLflow SQLite database in a scratch
home (issue 22):

GRID      16 trainings of `sklearn.ensemble.RandomForestClassifier` on the digits dataset bundled with
          scikit-learn (200-350 trees, max_depth None/12/16/20: a fit of about 0.9 s and 0.2 s of tracking
          each; `--light`: 40-100 trees, 0.3-1 s each, where the fixed cost per training dominates), each
          with its evaluation,
          then select_best. Parallel: `examples/ml_grid.json`'s shape (a `builtin/map@1` over the param dicts)
          through `engine.run` on Ray, every training an MLflow run nested under the run's parent. Sequential:
          the same node functions called one after the other in one process (`nodes.testing.run_node`), with
          the same tracking, inside one Ray task of the plugin's environment (Ray's workers run at a lower
          priority than this process: on a shared machine an in-process run would get more CPU than either
          side's workers). target: speedup >= 1.7x on 2 cores.
TRACKING  one training node with MLflow logging (nested run, params, metrics, the model with signature and
          input example) against the same fit without tracking (`rayweave_ml.nodes.fit_estimator`), in this
          process: the ratio.
COLD      the plugin environment's cold start: reading the plugin's catalog in a fresh worker of its runtime
          environment (no virtualenv: its requirements are satisfied by the base environment), then the first
          and second run of a one-node workflow with an ML node, against the same with a built-in node.
CEILING   two processes against one doing plain CPU work, before and after GRID: the most any 2-way
          parallel speedup can reach on the machine at that time (on a machine shared with other work it can
          be far below 2x); the grid's 16 fits alone (no Ray, no rayweave, no MLflow) in two plain
          processes against one: what the machine allows this very workload; and the 16 trainings with
          their tracking (train + evaluate nodes, MLflow on one SQLite file, no Ray) in two plain processes
          against one: what is left once tracking is in, so the rest of the gap is Ray's and the engine's.
CPU       the CPU-seconds each GRID side used (this process and every process it started: Ray's GCS, raylet,
          workers, the run coordinator), which the machine's load does not inflate the way it does wall time:
          2 x sequential / parallel CPU is the speedup a 2-core machine could give the grid if nothing else
          ran and no core ever waited.
SERVING   `bench.ml_serving_bench.measure_serving` (written with the serving work), when `--serving` is given.

Every GRID and TRACKING figure is the median of `--repeats` timed runs after one untimed warm-up run of each
side (which starts the workers, imports scikit-learn and MLflow and creates the database); the sides take
turns run by run, so a machine that slows down meanwhile affects both. Both sides run in warm workers: Ray
keeps idle workers for the bench (KEEP_WORKERS; `--ray-idle-default` measures with Ray's default, where the
parallel run right after the sequential one starts a cold worker). The load average is printed: the
machine is shared with other work. Ray's workers run at normal priority here (`RAY_worker_niceness=0`; Ray's
default, 15, starves them on a busy machine: two niced workers then get what one would, see `measure`).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ML_PLUGIN = ROOT / "nodes" / "firstparty" / "ml"
EXAMPLE = ROOT / "examples" / "ml_grid.json"
NUM_CPUS = 2
ESTIMATOR = "sklearn.ensemble.RandomForestClassifier"
DATASET = "digits"
#: Trainings of about 1.1 s each (200-350 trees: a 0.9 s fit, 0.2 s of tracking since the model is logged with
#: cloudpickle, see TRACKING; 2.6 s with skops before). `--light` takes the first grid (40-100 trees,
#: 0.3-1 s each), where that fixed cost dominates.
GRID = [
    {"n_estimators": trees, "max_depth": depth, "random_state": 0}
    for trees in (200, 250, 300, 350)
    for depth in (None, 12, 16, 20)
]
LIGHT_GRID = [
    {"n_estimators": trees, "max_depth": depth, "random_state": 0}
    for trees in (40, 60, 80, 100)
    for depth in (None, 8, 12, 16)
]
TARGET_SPEEDUP = 1.7
#: Set unless `--ray-idle-default`: Ray kills a worker idle for more than 1 s when more workers than CPUs
#: exist. While the sequential side's one long task runs, the plugin environment's other worker idles and is
#: killed, so the next parallel run starts a fresh one and pays its imports (MLflow, scikit-learn: about 2 s
#: of a training that takes 0.9 s warm), while the sequential side always gets the warm worker it ran in
#: before. Ray's own setting, read by the raylet this process starts, keeps both sides warm. An installation
#: that runs grids often can set it for its Ray cluster too (memory: one idle worker per CPU and runtime
#: environment).
KEEP_WORKERS = ("RAY_idle_worker_killing_time_threshold_ms", "600000")


def grid_document() -> dict[str, Any]:
    """`examples/ml_grid.json` with the benchmark's dataset and estimator, without the registration."""
    document = copy.deepcopy(json.loads(EXAMPLE.read_text()))
    sub = document["nodes"]["grid"]["params"]["workflow"]
    sub["nodes"]["data"]["params"]["name"] = DATASET
    sub["nodes"]["train"]["params"]["estimator"] = ESTIMATOR
    document["name"] = "ml-bench-grid"
    del document["nodes"]["register"]
    document["outputs"] = {"best_f1": "best.value", "models": "grid.out"}
    return document


def plugin_nodes() -> Any:
    """The plugin's module, imported in this process (its nodes are plain node definitions here)."""
    if str(ML_PLUGIN) not in sys.path:
        sys.path.insert(0, str(ML_PLUGIN))
    import rayweave_ml.nodes

    return rayweave_ml.nodes


def sequential_grid(config: dict[str, str], run_id: str) -> float:
    """The grid in one process, node after node, with the same tracking: seconds. Runs in a Ray task of the
    plugin's environment (`sequential_on_ray`), so both sides run at Ray workers' priority and imports."""
    import rayweave_ml.nodes as ml

    from nodes.testing import run_node

    started = time.perf_counter()
    table = run_node(ml.load_dataset, params={"name": DATASET})["table"]
    parts = run_node(ml.split, {"table": table}, {"test_size": 0.3, "seed": 0, "stratify": "target"})
    models = []
    for index, params in enumerate(GRID):
        common = {"config": config, "run_id": run_id, "workflow": "ml-bench-sequential"}
        trained = run_node(
            ml.train,
            {"table": parts["train"], "params": params},
            {"estimator": ESTIMATOR},
            node_id=f"grid[{index}].train",
            **common,
        )
        evaluated = run_node(ml.evaluate, {"model": trained["model"], "table": parts["test"]}, **common)
        models.append(evaluated["model"])
    run_node(ml.select_best, {"models": models}, {"metric": "test_f1_macro"})
    return time.perf_counter() - started


def sequential_on_ray(env: dict[str, Any], config: dict[str, str], run_id: str) -> float:
    """`sequential_grid` in one Ray task of the plugin's runtime environment (1 CPU): seconds.

    Ray runs its workers at a lower priority (`RAY_worker_niceness`, 15) than this process: on a machine shared
    with other work, the grid run here would get more CPU than the same grid on Ray. One task is one process
    at the same priority, with the same imports, as the parallel side's workers."""
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import bench
    task: Any = ray.remote(sequential_grid)
    return float(ray.get(task.options(runtime_env=env, num_cpus=1, max_retries=0).remote(config, run_id)))


def parallel_grid(plan: Any, settings: Any) -> float:
    """The grid through `engine.run` on Ray (a map over the param dicts): seconds."""
    import engine

    started = time.perf_counter()
    result = engine.run(plan, {"grid": GRID}, settings=settings, cache=False)
    took = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"the grid run failed: {result.errors}")
    return took


def tracked_and_untracked(config: dict[str, str]) -> tuple[Callable[[], float], Callable[[], float]]:
    """One training with MLflow tracking (the node) and the same fit without: two timers."""
    from nodes import context
    from nodes.testing import run_node

    ml = plugin_nodes()
    table = run_node(ml.load_dataset, params={"name": DATASET})["table"]
    params = GRID[len(GRID) // 2]

    def tracked() -> float:
        started = time.perf_counter()
        run_node(
            ml.train,
            {"table": table, "params": params},
            {"estimator": ESTIMATOR},
            config=config,
            workflow="ml-bench",
        )
        return time.perf_counter() - started

    def untracked() -> float:
        started = time.perf_counter()
        with context.use(context.NodeContext(config=config)):
            ml.fit_estimator(table, ESTIMATOR, dict(params), "target", "auto", "bench")
        return time.perf_counter() - started

    return tracked, untracked


def cpu_seconds() -> float:
    """CPU-seconds (user + system) used so far by this process and every process it started that is still
    alive (Ray's GCS, raylet and workers: the bench keeps its workers, so none of the grid's go missing)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def with_cpu(fn: Callable[[], float], spent: list[float]) -> Callable[[], float]:
    """`fn` as a timer that also appends the CPU-seconds each call used (`cpu_seconds`) to `spent`."""

    def timed() -> float:
        before = cpu_seconds()
        seconds = fn()
        spent.append(cpu_seconds() - before)
        return seconds

    return timed


def paired(
    fns: list[Callable[[], float]], rounds: int, samples: list[list[float]] | None = None
) -> list[float]:
    """The median of each timer over `rounds` rounds after one untimed warm-up; timers take turns. Each
    timer's timed runs are appended to `samples` (one list per timer) when given."""
    for fn in fns:
        fn()
    if samples is None:
        samples = []
    samples[:] = [[] for _ in fns]
    for _ in range(rounds):
        for index, fn in enumerate(fns):
            samples[index].append(fn())
    return [statistics.median(s) for s in samples]


def cold_start(settings: Any) -> dict[str, float]:
    """Seconds: the plugin's catalog read in a fresh environment worker, then first/second one-node runs of an
    ML node and of a built-in node (each first run may start a worker)."""
    import engine
    from nodes import Catalog
    from nodes.plugins import open_plugin_dir
    from nodes.plugins.loader import load_plugins

    def one(type_id: str, params: dict[str, Any], port: str) -> dict[str, Any]:
        return {
            "format": "rayweave.workflow/1",
            "name": f"cold-{type_id.split('/')[0]}",
            "nodes": {"n": {"type": type_id, "params": params}},
            "outputs": {"out": f"n.{port}"},
        }

    def timed(document: dict[str, Any], catalog: Any) -> float:
        started = time.perf_counter()
        result = engine.run(document, None, catalog=catalog, settings=settings, cache=False)
        took = time.perf_counter() - started
        if not result.ok:
            raise RuntimeError(f"{document['name']} failed: {result.errors}")
        return took

    figures: dict[str, float] = {}
    builtin = one("builtin/constant@1", {"value": 1}, "out")
    figures["builtin first run"] = timed(builtin, Catalog.builtin())
    figures["builtin second run"] = timed(builtin, Catalog.builtin())
    catalog = Catalog.builtin()
    started = time.perf_counter()
    report = load_plugins([open_plugin_dir(ML_PLUGIN)], catalog, timeout_s=600)
    figures["ml plugin load (catalog read in a fresh env worker)"] = time.perf_counter() - started
    if report.failed:
        raise RuntimeError(f"the ML plugin did not load: {report.failed}")
    ml = one("ml/load_dataset@1", {"name": "iris"}, "table")
    figures["ml node first run"] = timed(ml, catalog)
    figures["ml node second run"] = timed(ml, catalog)
    return figures


def _burn(_: int) -> float:
    """Seconds taken by a fixed amount of pure-Python work."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def cpu_ceiling(rounds: int = 3) -> float:
    """The speedup two processes get over one on this machine right now, for plain CPU work (the ceiling of
    any 2-way parallel speedup): the median over `rounds` of (two burns one after the other) / (two at once)."""
    import multiprocessing

    ratios = []
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_burn, [0, 1])  # warm-up: the pool's processes are up
        for _ in range(rounds):
            started = time.perf_counter()
            pool.map(_burn, [0, 1])
            parallel = time.perf_counter() - started
            started = time.perf_counter()
            _burn(0)
            _burn(0)
            ratios.append((time.perf_counter() - started) / parallel)
    return statistics.median(ratios)


def _fits(items: list[dict[str, Any]]) -> float:
    """Seconds to fit the grid's estimator with each of `items` on digits, no rayweave run and no tracking
    (after one untimed fit that imports everything)."""
    from nodes import context

    ml = plugin_nodes()
    table = ml.load_dataset(name=DATASET)["table"]
    with context.use(context.NodeContext()):
        ml.fit_estimator(table, ESTIMATOR, dict(GRID[0]), "target", "auto", "bench")
        started = time.perf_counter()
        for params in items:
            ml.fit_estimator(table, ESTIMATOR, dict(params), "target", "auto", "bench")
    return time.perf_counter() - started


def fit_ceiling() -> float:
    """The speedup of the grid's 16 bare fits in two plain processes (half each) over one process: what the
    machine allows this workload without Ray, rayweave or MLflow."""
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(2) as pool:
        parallel = max(pool.map(_fits, [GRID[0::2], GRID[1::2]]))
    with spawn.Pool(1) as pool:
        sequential = pool.map(_fits, [GRID])[0]
    return float(sequential / parallel)


def _tracked(args: tuple[list[dict[str, Any]], dict[str, str], str]) -> float:
    """Seconds to train and evaluate (the plugin's nodes, with their MLflow tracking) the grid's estimator with
    each param dict of `items`, in this process without Ray (after one untimed small training)."""
    items, config, run_id = args
    from nodes.testing import run_node

    ml = plugin_nodes()
    table = run_node(ml.load_dataset, params={"name": DATASET})["table"]
    parts = run_node(ml.split, {"table": table}, {"test_size": 0.3, "seed": 0, "stratify": "target"})

    def one(index: int, params: dict[str, Any], run: str) -> None:
        common: dict[str, Any] = {"config": config, "run_id": run, "workflow": "ml-bench-tracked"}
        trained = run_node(
            ml.train,
            {"table": parts["train"], "params": params},
            {"estimator": ESTIMATOR},
            node_id=f"grid[{index}].train",
            **common,
        )
        run_node(ml.evaluate, {"model": trained["model"], "table": parts["test"]}, **common)

    one(0, {**GRID[0], "n_estimators": 10}, f"{run_id}-warm")
    started = time.perf_counter()
    for index, params in enumerate(items):
        one(index, params, run_id)
    return time.perf_counter() - started


def tracked_ceiling(config: dict[str, str]) -> float:
    """The speedup of the grid's 16 trainings with their tracking (train and evaluate nodes, one SQLite
    tracking file) in two plain processes (half each) over one process: no Ray, no engine."""
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(2) as pool:
        halves = [(GRID[0::2], config, "tracked-2"), (GRID[1::2], config, "tracked-2")]
        parallel = max(pool.map(_tracked, halves))
    with spawn.Pool(1) as pool:
        sequential = pool.map(_tracked, [(GRID, config, "tracked-1")])[0]
    return float(sequential / parallel)


def serving_section(requests: int = 1000, clients: int = 8) -> dict[str, Any]:
    """The serving measurements of `bench/ml_serving_bench.py` (its `measure_serving`), with its report."""
    from bench import ml_serving_bench

    results: dict[str, Any] = ml_serving_bench.measure_serving(requests=requests, clients=clients)
    print(ml_serving_bench.report(results, clients))
    return results


def measure(repeats: int) -> dict[str, Any]:
    """Start Ray (2 CPUs) and measure COLD, GRID and TRACKING (see the module docstring)."""
    from cluster.ray_runtime import ensure_ray, shutdown_ray
    from cluster.settings import Settings
    from engine.execution.api import compile_for_run
    from engine.execution.nodeconfig import node_config_for
    from nodes import Catalog
    from nodes.plugins import open_plugin_dir
    from nodes.plugins.loader import load_plugins

    home = Path(tempfile.mkdtemp(prefix="rayweave-ml-bench-"))
    settings = Settings(home=home)
    config = node_config_for(settings)
    # Ray lowers its workers' priority (nice 15) below everything else on the machine: on a machine shared with
    # other work, its two workers then share the CPU time the others leave, which one worker would get alone,
    # and the grid measures the scheduler rather than parallelism. Workers at normal priority (the raylet
    # started here inherits this) compete like the sequential side's one process would.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ensure_ray(settings, num_cpus=NUM_CPUS, include_dashboard=False)
    try:
        results: dict[str, Any] = {"cold": cold_start(settings), "ceiling_before": cpu_ceiling()}
        catalog = Catalog.builtin()
        load_plugins([open_plugin_dir(ML_PLUGIN)], catalog, timeout_s=600)
        env = catalog.get("ml/train@1").runtime_env
        plan = compile_for_run(grid_document(), catalog=catalog)
        counter = iter(range(1_000_000))
        parallel_cpu: list[float] = []
        sequential_cpu: list[float] = []
        samples: list[list[float]] = []
        parallel, sequential = paired(
            [
                with_cpu(lambda: parallel_grid(plan, settings), parallel_cpu),
                with_cpu(
                    lambda: sequential_on_ray(env, config, f"sequential-{next(counter)}"), sequential_cpu
                ),
            ],
            repeats,
            samples,
        )
        # The first of each list is the warm-up run's.
        cpu_par, cpu_seq = statistics.median(parallel_cpu[1:]), statistics.median(sequential_cpu[1:])
        results["grid"] = {
            "parallel_s": parallel,
            "sequential_s": sequential,
            "speedup": sequential / parallel,
            "parallel_cpu_s": cpu_par,
            "sequential_cpu_s": cpu_seq,
            "cpu_bound": 2 * cpu_seq / cpu_par,
            "parallel_runs_s": samples[0],
            "sequential_runs_s": samples[1],
        }
        results["ceiling_after"] = cpu_ceiling()
        results["fit_ceiling"] = fit_ceiling()
        results["tracked_ceiling"] = tracked_ceiling(config)
        tracked, untracked = tracked_and_untracked(config)
        with_s, without_s = paired([tracked, untracked], max(repeats, 5))
        results["tracking"] = {"with_s": with_s, "without_s": without_s, "ratio": with_s / without_s}
        return results
    finally:
        shutdown_ray()


def report(results: dict[str, Any]) -> str:
    """The measurements as a small table."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"load average {load}; Ray num_cpus={NUM_CPUS}; {len(GRID)} trainings ({ESTIMATOR} on {DATASET}); "
        f"idle workers kept: {os.environ.get(KEEP_WORKERS[0], 'no (Ray default, 1 s)')}"
    ]
    lines.append("COLD start (s)")
    for name, seconds in results["cold"].items():
        lines.append(f"    {name:56} {seconds:7.2f}")
    grid = results["grid"]
    verdict = "ok" if grid["speedup"] >= TARGET_SPEEDUP else "below target"
    lines += [
        "GRID (median s)",
        f"    {'parallel on Ray (engine.run, map)':56} {grid['parallel_s']:7.2f}",
        f"    {'sequential in one process (one Ray task)':56} {grid['sequential_s']:7.2f}",
        f"    {'speedup':56} {grid['speedup']:7.2f}x  (target >= {TARGET_SPEEDUP}x: {verdict})",
        f"    {'this machine now: 2 processes vs 1, plain CPU (before/after)':56} "
        f"{results['ceiling_before']:.2f}x / {results['ceiling_after']:.2f}x",
        f"    {'the 16 bare fits, 2 plain processes vs 1 (no Ray, no MLflow)':56} {results['fit_ceiling']:7.2f}x",
        f"    {'the 16 tracked trainings, 2 plain processes vs 1 (no Ray)':56} "
        f"{results['tracked_ceiling']:7.2f}x",
        f"    {'timed runs, parallel (s)':56} " + " ".join(f"{x:.2f}" for x in grid["parallel_runs_s"]),
        f"    {'timed runs, sequential (s)':56} " + " ".join(f"{x:.2f}" for x in grid["sequential_runs_s"]),
        "CPU (median CPU-seconds of one grid, all of this run's processes)",
        f"    {'parallel / sequential':56} {grid['parallel_cpu_s']:7.2f} / {grid['sequential_cpu_s']:.2f}",
        f"    {'2 x sequential / parallel: the speedup 2 idle cores allow':56} {grid['cpu_bound']:7.2f}x",
    ]
    tracking = results["tracking"]
    lines += [
        "TRACKING (median s of one training)",
        f"    {'with MLflow (nested run, params, metrics, model)':56} {tracking['with_s']:7.3f}",
        f"    {'without (fit only)':56} {tracking['without_s']:7.3f}",
        f"    {'ratio':56} {tracking['ratio']:7.2f}x",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the arguments, measure, print the report; returns the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (median)")
    parser.add_argument("--serving", action="store_true", help="also run bench/ml_serving_bench.py's section")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--light", action="store_true", help="the light grid (0.3-1 s per training)")
    parser.add_argument(
        "--ray-idle-default",
        action="store_true",
        help="Ray's default: idle workers beyond the CPUs are killed after 1 s (see KEEP_WORKERS)",
    )
    args = parser.parse_args(argv)
    if args.light:
        GRID[:] = LIGHT_GRID
    if not args.ray_idle_default:
        os.environ.setdefault(*KEEP_WORKERS)
    results = measure(args.repeats)
    print(report(results))
    if args.serving:
        results["serving"] = serving_section()
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
