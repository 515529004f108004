"""Submitting node tasks: straight to Ray's core worker, without `RemoteFunction._remote`'s per-call work.

`_remote` fills every task option with its default, validates the arguments against the function's signature
and resolves placement-group and tracing context on every call. For a tiny node that costs about as much as
the core worker's own submission, and the coordinator submits every task of every run (issue 4, W1). The
options of node tasks are built by the planner, so `TaskSubmitter` does that work once per kind of task and
calls the core worker itself, with what `_remote` would have passed.

It falls back to `_remote` (the public path) for anything it does not handle the same way: options beyond
the planner's (`DIRECT_OPTIONS`), tracing turned on, a placement group capturing child tasks, a task launch
hook, a function not yet exported to this cluster (the first call of a job exports it), and a Ray whose
core-worker call takes other arguments than the one this was written for (checked once, from its signature;
Ray is pinned to 2.60.x).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The options a direct submission handles; a task with any other goes through `_remote`.
DIRECT_OPTIONS = frozenset(
    {"name", "num_returns", "max_retries", "retry_exceptions", "num_cpus", "num_gpus", "memory", "resources"}
)
#: The parameters of `CoreWorker.submit_task` in Ray 2.60, in order.
_SUBMIT_PARAMS = (
    "language",
    "function_descriptor",
    "args",
    "name",
    "num_returns",
    "resources",
    "max_retries",
    "retry_exceptions",
    "retry_exception_allowlist",
    "scheduling_strategy",
    "debugger_breakpoint",
    "serialized_runtime_env_info",
    "generator_backpressure_num_objects",
    "num_objects_per_yield",
    "enable_task_events",
    "labels",
    "label_selector",
    "fallback_strategy",
)


class NodeRemotes:
    """The coordinator's Ray remote functions, node actor class and I/O pool, made once per coordinator process.

    Ray gives every `ray.remote(...)` its own function id. Made per run, the node task would be exported to
    the GCS's function table again by every run (which keeps it until the job ends) and fetched from there
    again by every worker that runs one of its tasks: a GCS round trip per worker and run.
    """

    def __init__(self) -> None:
        import ray

        from engine.execution.ray.iopool import IONodeActor, IOPool
        from engine.execution.ray.remote import NodeActor, collect, collect_recorded, node_task

        self.task_fn = ray.remote(node_task)
        self.submitter = TaskSubmitter(self.task_fn)
        self.collect_fn = ray.remote(collect)
        self.collect_recorded_fn = ray.remote(collect_recorded)
        self.actor_class = ray.remote(NodeActor)
        #: The warm pool of actors that runs I/O-bound nodes, kept across runs (`engine.execution.ray.iopool`).
        self.io_pool = IOPool(ray.remote(IONodeActor))


class TaskSubmitter:
    """Submits the tasks of one Ray remote function (see the module docstring)."""

    def __init__(self, remote_function: Any) -> None:
        import ray
        from ray import remote_function as remote_function_module
        from ray._common.signature import DUMMY_TYPE
        from ray.util.tracing.tracing_helper import _is_tracing_enabled

        self.fn = remote_function
        self.direct = direct_submission_supported()
        # Looked up once: these run for every task.
        self._worker_module = ray._private.worker
        self._remote_function_module = remote_function_module
        self._tracing = _is_tracing_enabled
        self._dummy = DUMMY_TYPE
        #: Ray resources of each distinct resource request (frozen options -> resources dict).
        self._resources: dict[tuple[Any, ...], dict[str, Any]] = {}

    def submit(self, options: Mapping[str, Any], serialized_env: str | None, args: list[Any]) -> Any:
        """Submit one task with `options` (as for `.options(...)`, but a runtime env only as `serialized_env`,
        Ray's serialized form) and positional `args`; returns what `.remote(*args)` would."""
        if self.direct and options.keys() <= DIRECT_OPTIONS and self._exported():
            return self._submit_direct(options, serialized_env, args)
        if serialized_env is not None:
            return self.fn._remote(
                args=args, kwargs={}, serialized_runtime_env_info=serialized_env, **options
            )
        return self.fn._remote(args=args, kwargs={}, **options)

    def _exported(self) -> bool:
        worker = self._worker_module.global_worker
        return bool(
            self.fn._last_export_cluster_and_job == worker.current_cluster_and_job
            and not self._tracing()
            and self.fn._decorator is None
            and not self.fn._is_cross_language
            and not worker.should_capture_child_tasks_in_placement_group
            and self._remote_function_module._task_launch_hook is None
        )

    def _submit_direct(self, options: Mapping[str, Any], serialized_env: str | None, args: list[Any]) -> Any:
        worker = self._worker_module.global_worker
        flat: list[Any] = []
        for arg in args:
            flat += [self._dummy, arg]
        num_returns = options.get("num_returns", 1)
        refs = worker.core_worker.submit_task(  # type: ignore[attr-defined]
            self.fn._language,
            self.fn._function_descriptor,
            flat,
            options.get("name") or "",
            num_returns,
            self.resources(options),
            options.get("max_retries", 3),
            bool(options.get("retry_exceptions", False)),
            None,
            "DEFAULT",
            worker.debugger_breakpoint,
            serialized_env or "{}",
            -1,
            1,
            True,
            None,
            None,
            None,
        )
        worker.debugger_breakpoint = b""
        return refs[0] if len(refs) == 1 else refs

    def resources(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The Ray resource request of a task with `options`, as `_remote` computes it (defaults filled in)."""
        key = tuple(
            (name, _freeze(options.get(name))) for name in ("num_cpus", "num_gpus", "memory", "resources")
        )
        found = self._resources.get(key)
        if found is None:
            from ray._common.ray_option_utils import task_options
            from ray._common.utils import resources_from_ray_options

            filled = {name: options.get(name, option.default_value) for name, option in task_options.items()}
            found = self._resources[key] = resources_from_ray_options(filled)
        return dict(found)


def direct_submission_supported() -> bool:
    """Whether this Ray's `CoreWorker.submit_task` takes the arguments `TaskSubmitter` passes."""
    try:
        from ray._raylet import CoreWorker  # type: ignore[attr-defined]

        doc = CoreWorker.submit_task.__doc__ or ""
    except Exception:  # not the Ray this was written for
        return False
    head = doc.split("\n", 1)[0]
    if "(" not in head:
        return False
    params = [p.strip().split(" ")[-1] for p in head[head.index("(") + 1 : head.rindex(")")].split(",")]
    return tuple(params[1:]) == _SUBMIT_PARAMS  # params[0] is self


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    return value
