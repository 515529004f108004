"""The SDK's `run` and `submit`: compile a workflow once, resolve its inputs once, start it on the one run path.

`submit` turns what the caller has (a builder `Workflow`, a document, a file, a compiled `Plan`; a name or an
executor object; a cache or a flag) into what `engine.execution.start.start_run` takes, which answers what
the cache can (a fully cached rerun touches no Ray worker at all) and hands the rest to the executor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from engine.cache.result_cache import ResultCache
from engine.compile.plan import Plan
from engine.errors import WorkflowInputError
from engine.execution.access import policy_for
from engine.execution.events import Event, EventSink
from engine.execution.handle import RunHandle
from engine.execution.result import RunResult
from nodes.ids import RunId

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.execution.executor import Executor
    from nodes import Catalog

#: `executor=` accepts an executor object or one of these names.
EXECUTOR_NAMES = ("ray", "local")


def compile_for_run(
    workflow: Any,
    *,
    catalog: Catalog | None = None,
    optimize: bool = True,
    outputs: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
) -> Plan:
    """Compile a builder `Workflow`, a `WorkflowDoc`, a dict, or a path to a .json/.yaml file.

    An already compiled `Plan` is returned as it is (compile once, run many times: compiling a big
    workflow costs more than running it from the cache). `targets`: only those nodes and their ancestors,
    with the targets' ports as the outputs ("run to here", see `compile_workflow`).
    """
    from engine.compile import compile_workflow

    if isinstance(workflow, Plan):
        return workflow

    if isinstance(workflow, str | Path) and not isinstance(workflow, Mapping):
        from engine.workflow import load_workflow_file

        workflow = load_workflow_file(workflow)
    return compile_workflow(
        workflow,
        catalog,
        optimize=optimize,
        outputs=list(outputs) if outputs else None,
        targets=list(targets) if targets else None,
    )


def resolve_inputs(plan: Plan, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The workflow inputs with defaults applied, each checked against its declared type."""
    from typesys import TypeCheckError, check

    given = dict(inputs or {})
    unknown = sorted(set(given) - set(plan.inputs))
    if unknown:
        raise WorkflowInputError(
            f"workflow {plan.name!r} has no input(s) {unknown}; its inputs are {sorted(plan.inputs)}"
        )
    resolved: dict[str, Any] = {}
    for name, spec in plan.inputs.items():
        if name in given:
            value = given[name]
        elif not spec.required:
            value = spec.default
        else:
            raise WorkflowInputError(
                f"workflow {plan.name!r} needs input {name!r} of type {spec.type}; pass it "
                f"(e.g. inputs={{{name!r}: ...}} or --input {name}=...)"
            )
        try:
            check(value, spec.type, registry=plan.validators)
        except TypeCheckError as exc:
            raise WorkflowInputError(
                f"workflow {plan.name!r}: input {name!r} expects {spec.type}, got {exc.actual}"
                f"{' at ' + exc.path if exc.path else ''}{f' ({exc.detail})' if exc.detail else ''}; pass a "
                f"value of type {spec.type}"
            ) from exc
        resolved[name] = value
    return resolved


def sdk_settings(settings: Settings | None) -> Settings:
    """The settings an SDK entry point runs with: the caller's, or when it passes none the installation's,
    read from the environment here, once per call (the engine below never reads the environment itself)."""
    if settings is not None:
        return settings
    from cluster.settings import Settings

    return Settings()


def make_executor(executor: Any, settings: Settings) -> Executor:
    """An executor from `executor=`: None or "ray" (connects to Ray as `settings` say, on its first run),
    "local" (in-process), or an executor object (returned as it is)."""
    if executor is None or executor == "ray":
        from engine.execution.ray.executor import RayExecutor

        return RayExecutor.for_settings(settings)
    if executor == "local":
        from engine.execution.inprocess import InProcessExecutor

        return InProcessExecutor()
    if isinstance(executor, str):
        raise ValueError(f"unknown executor {executor!r}; use one of {EXECUTOR_NAMES} or an executor object")
    return cast("Executor", executor)


def submit(
    workflow: Any,
    inputs: Mapping[str, Any] | None = None,
    *,
    catalog: Catalog | None = None,
    optimize: bool = True,
    fail_fast: bool = False,
    settings: Settings | None = None,
    outputs: Sequence[str] | None = None,
    on_event: Callable[[Event], None] | None = None,
    executor: Any = None,
    cache: ResultCache | bool | None = None,
    run_id: str | None = None,
    sink: EventSink | None = None,
) -> RunHandle:
    """Start a run of `workflow` and return its `RunHandle` at once.

    `workflow`: a builder `Workflow`, a `WorkflowDoc`, its dict form, a path to a .json/.yaml file, or a
    `Plan` compiled before (then `catalog`, `optimize` and `outputs` were applied when it was compiled).
    `settings`: the installation (None: read from the environment, see `sdk_settings`).
    `executor`: None/"ray" (the default; connects to Ray as `settings` say) or "local" (in-process), or an
    executor object. `cache`: a `ResultCache` to use and fill (keep one around for in-memory hits across
    runs), None for one over `settings`' cache directory, or False for no caching. The run's file and network
    nodes reach only what `settings` allow (`data_roots`, `http_allow`: see `engine.execution.access`).
    The run starts through `engine.execution.start.start_run`, like every run.
    """
    from engine.execution.start import EventRecorder, start_run

    settings = sdk_settings(settings)
    plan = compile_for_run(workflow, catalog=catalog, optimize=optimize, outputs=outputs)
    values = resolve_inputs(plan, inputs)
    result_cache: ResultCache | None
    if cache is False:
        result_cache = None
    elif cache is None or cache is True:
        result_cache = ResultCache.for_settings(settings)
    else:
        result_cache = cache
    return start_run(
        plan,
        values,
        executor=make_executor(executor, settings),
        cache=result_cache,
        recorder=EventRecorder(sink),
        run_id=RunId(run_id) if run_id else None,
        fail_fast=fail_fast,
        policy=policy_for(settings),
        on_event=on_event,
    )


def run(
    workflow: Any,
    inputs: Mapping[str, Any] | None = None,
    *,
    catalog: Catalog | None = None,
    optimize: bool = True,
    fail_fast: bool = False,
    settings: Settings | None = None,
    outputs: Sequence[str] | None = None,
    on_event: Callable[[Event], None] | None = None,
    executor: Any = None,
    cache: ResultCache | bool | None = None,
    run_id: str | None = None,
    sink: EventSink | None = None,
    timeout: float | None = None,
) -> RunResult:
    """Run `workflow` to the end and return its `RunResult` (see `submit` for the arguments)."""
    started = time.monotonic()
    handle = submit(
        workflow,
        inputs,
        catalog=catalog,
        optimize=optimize,
        fail_fast=fail_fast,
        settings=settings,
        outputs=outputs,
        on_event=on_event,
        executor=executor,
        cache=cache,
        run_id=run_id,
        sink=sink,
    )
    remaining = None if timeout is None else max(timeout - (time.monotonic() - started), 0.0)
    return handle.result(remaining)
