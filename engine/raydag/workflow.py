"""`workflow.run(dag, workflow_id=...)` for code written for Ray Workflows (removed after Ray 2.47), durable on
rayweave: change `from ray import workflow` to `from engine.raydag import workflow` and the DAG runs as a
recorded, resumable rayweave run.

`workflow_id` is the run's idempotency key: running the same id again returns the first run's result instead
of running the DAG twice (as Ray Workflows did for a finished workflow); `get_output`, `get_status` and `resume`
find the run by it. `init(settings=..., executor=...)` chooses the installation and the executor (`"ray"`, the
default, or `"local"` in this process); without it the installation is `RAYWEAVE_HOME`'s.
"""

from __future__ import annotations

import threading
from typing import Any

from engine.raydag.convert import INPUT, RESULT, workflow_from_dag
from nodes.states import NodeStatus

__all__ = ["get_output", "get_status", "init", "resume", "run", "run_async"]

#: Idempotency keys of workflow ids, so they do not clash with keys of the API's clients.
KEY_PREFIX = "raydag:"


class _Session:
    """The runner `run` and friends use (made on first use, or by `init`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runner: Any = None
        self.settings: Any = None
        self.executor = "ray"

    def get(self) -> Any:
        with self.lock:
            if self.runner is None:
                from engine.durable import DurableRunner

                self.runner = DurableRunner(self.settings, executor=self.executor)
            return self.runner


_SESSION = _Session()


def init(settings: Any = None, *, executor: str = "ray") -> None:
    """Use `settings` (a `cluster.settings.Settings`; default: the environment's) and `executor` from now on
    (Ray Workflows' `workflow.init(storage=...)`: here the store is the installation's database)."""
    with _SESSION.lock:
        _SESSION.settings, _SESSION.executor, _SESSION.runner = settings, executor, None


def run_async(dag: Any, *args: Any, workflow_id: str | None = None, **kwargs: Any) -> Any:
    """Start the DAG as a durable run; returns its `RunHandle` (`.result()` waits for the `RunResult`).
    Positional arguments feed the DAG's `InputNode` (one: the input itself), keywords its `inp.name` reads."""
    name = f"ray-dag-{workflow_id}" if workflow_id else "ray-dag"
    inputs = dict(kwargs)
    if args:
        inputs[INPUT] = args[0] if len(args) == 1 else list(args)
    wf = workflow_from_dag(dag, name=_safe(name))
    key = f"{KEY_PREFIX}{workflow_id}" if workflow_id else None
    return _SESSION.get().submit(wf, inputs, idempotency_key=key)


def run(dag: Any, *args: Any, workflow_id: str | None = None, **kwargs: Any) -> Any:
    """Run the DAG durably and return its output (the value of the DAG's root; a list for a
    `MultiOutputNode`); raises `WorkflowRunError` naming the failed nodes when the run fails."""
    return _output(run_async(dag, *args, workflow_id=workflow_id, **kwargs).result())


def get_status(workflow_id: str) -> str:
    """The status of the run of `workflow_id` (`queued`, `running`, `succeeded`, `failed`, `cancelled`)."""
    return str(_run_of(workflow_id).status)


def get_output(workflow_id: str) -> Any:
    """The output of the finished run of `workflow_id` (waits for it when it is still going)."""
    runner = _SESSION.get()
    return _output(runner.attach(_run_of(workflow_id).id).result())


def resume(workflow_id: str) -> Any:
    """Resume the unfinished run of `workflow_id` (its finished nodes are not run again) and return its output."""
    runner = _SESSION.get()
    return _output(runner.resume(_run_of(workflow_id).id).result())


class WorkflowRunError(RuntimeError):
    """The run of a Ray DAG failed; the message names the run, its status and its failed nodes."""


def _run_of(workflow_id: str) -> Any:
    from engine.store import NotFoundError

    run = _SESSION.get().store.runs.get_by_idempotency_key("local", f"{KEY_PREFIX}{workflow_id}")
    if run is None:
        raise NotFoundError(
            f"no run of workflow id {workflow_id!r}; start it with workflow.run(dag, workflow_id=...)"
        )
    return run


def _output(result: Any) -> Any:
    if not result.ok:
        failed = sorted(n for n, r in result.nodes.items() if getattr(r, "status", None) == NodeStatus.FAILED)
        raise WorkflowRunError(
            f"run {result.run_id} of {result.workflow!r} ended {result.status.value}"
            + (f"; failed nodes: {', '.join(failed)}" if failed else "")
            + f" (rayweave runs show {result.run_id} has the errors)"
        )
    outputs = dict(result.outputs)
    if RESULT in outputs:
        return outputs[RESULT]
    return [outputs[f"{RESULT}_{i}"] for i in range(len(outputs))]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:200]
