"""Run one node from pytest: in-process with type checks (`run_node`), or as a Ray task (`run_node_on_ray`).

```python
from nodes.testing import run_node

def test_add():
    result = run_node(add, inputs={"a": 1.0, "b": 2.0}, params={"scale": 2.0})
    assert result["out"] == 6.0        # or result.value for a node with the single output `out`
```

Both helpers check inputs and params against the node's ports before the call and outputs after it, raising
`NodeInputError` / `NodeOutputError` naming the node and the port. They apply the skip rule the engine
applies (an input `SKIP` skips the node unless it `accepts_skipped`), and record what the node reported
through its context (logs, progress, partial outputs) in `result.events`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nodes.checking import check_inputs, check_outputs, check_params
from nodes.context import NodeContext, use
from nodes.decorator import node
from nodes.definition import NodeDefinition
from nodes.errors import NodeTimeoutError
from nodes.ray_options import actor_options_of, task_options
from nodes.skip import SKIP
from nodes.states import EventType

__all__ = ["NodeResult", "run_node", "run_node_on_ray"]

Event = tuple[str, dict[str, Any]]


class NodeResult(dict[str, Any]):
    """The outputs of one node run by port name, plus what the node reported while running."""

    def __init__(self, outputs: Mapping[str, Any], events: list[Event], skipped: bool = False) -> None:
        super().__init__(outputs)
        self.events = events
        self.skipped = skipped

    @property
    def value(self) -> Any:
        """The value of the single output port `out` (KeyError for nodes with named output ports)."""
        if "out" not in self:
            raise KeyError(f"this node has no output port 'out'; its outputs are {sorted(self)}")
        return self["out"]

    @property
    def logs(self) -> list[str]:
        """The messages of the node's `node.log` events, in order."""
        return [payload["message"] for kind, payload in self.events if kind == EventType.NODE_LOG]

    @property
    def progress(self) -> list[float]:
        """The fractions of the node's `node.progress` events, in order."""
        return [payload["fraction"] for kind, payload in self.events if kind == EventType.NODE_PROGRESS]

    @property
    def partial_outputs(self) -> list[Any]:
        """The values of the node's `node.output` events (every value a generator node yielded)."""
        return [payload["value"] for kind, payload in self.events if kind == EventType.NODE_OUTPUT]


def _definition(defn_or_func: NodeDefinition | Callable[..., Any]) -> NodeDefinition:
    if isinstance(defn_or_func, NodeDefinition):
        return defn_or_func
    return node(defn_or_func)


def _execute(
    definition: NodeDefinition,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    run_id: str,
    node_id: str,
    attempt: int,
    registry: Any,
    check: bool,
    instance: Any = None,
    config: Mapping[str, str] | None = None,
    workflow: str = "",
) -> tuple[dict[str, Any], list[Event], bool]:
    spec = definition.spec
    if check:
        check_inputs(spec, inputs, registry=registry, node_id=node_id)
        check_params(spec, params, registry=registry, node_id=node_id)
    if definition.receives_skip(inputs):
        return definition.skipped_outputs(), [], True
    events: list[Event] = []

    def emit(event_type: str, payload: Mapping[str, Any]) -> None:
        events.append((event_type, dict(payload)))

    ctx = NodeContext(
        run_id=run_id, node_id=node_id, attempt=attempt, emit=emit, workflow=workflow, config=config
    )
    with use(ctx):
        outputs = definition.invoke(inputs, params, instance=instance)
    if check:
        check_outputs(spec, outputs, registry=registry, node_id=node_id)
    skipped = bool(outputs) and all(v is SKIP for v in outputs.values())
    return outputs, events, skipped


def run_node(
    defn_or_func: NodeDefinition | Callable[..., Any],
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    run_id: str = "test-run",
    node_id: str | None = None,
    attempt: int = 1,
    registry: Any = None,
    check: bool = True,
    instance: Any = None,
    config: Mapping[str, str] | None = None,
    workflow: str = "",
) -> NodeResult:
    """Run one node in this process, with type checks of inputs, params and outputs.

    `defn_or_func` is a `NodeDefinition` or a plain typed function (decorated on the fly). For class nodes
    pass `instance=definition.new_instance()` to reuse one set-up instance across calls, as the engine does.
    `config` and `workflow` are what the node's context carries in a run (`ctx.config`, `ctx.workflow`), e.g.
    `config={"mlflow.tracking_uri": "sqlite:///..."}` for the ML plugin's nodes.
    """
    definition = _definition(defn_or_func)
    outputs, events, skipped = _execute(
        definition,
        dict(inputs or {}),
        dict(params or {}),
        run_id=run_id,
        node_id=node_id or definition.spec.name,
        attempt=attempt,
        registry=registry,
        check=check,
        instance=instance,
        config=config,
        workflow=workflow,
    )
    return NodeResult(outputs, events, skipped)


def _ray_call(
    definition: NodeDefinition,
    inputs: dict[str, Any],
    params: dict[str, Any],
    node_id: str,
    registry: Any,
    check: bool,
) -> tuple[dict[str, Any], list[Event], bool]:
    return _execute(
        definition,
        inputs,
        params,
        run_id="test-run",
        node_id=node_id,
        attempt=1,
        registry=registry,
        check=check,
    )


class _NodeActor:
    """Hosts one class-node instance (setup() once), as the engine's reusable actor does."""

    def __init__(self, definition: NodeDefinition) -> None:
        self.definition = definition
        self.instance = definition.new_instance()

    def run(
        self, inputs: dict[str, Any], params: dict[str, Any], node_id: str, registry: Any, check: bool
    ) -> tuple[dict[str, Any], list[Event], bool]:
        return _execute(
            self.definition,
            inputs,
            params,
            run_id="test-run",
            node_id=node_id,
            attempt=1,
            registry=registry,
            check=check,
            instance=self.instance,
        )


def ray_options(definition: NodeDefinition) -> dict[str, Any]:
    """The Ray options a node runs with (`nodes.ray_options.task_options`): its resources, and no Ray-level
    retry of exceptions (the engine owns retries; Ray's own retries still cover dead workers)."""
    return task_options(definition.spec.resources)


def run_node_on_ray(
    defn_or_func: NodeDefinition | Callable[..., Any],
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    node_id: str | None = None,
    registry: Any = None,
    check: bool = True,
    timeout_s: float | None = None,
) -> NodeResult:
    """Run the same call as `run_node`, but as a Ray task with the node's real options.

    Resources become Ray options, exceptions are not retried by Ray, and the node's `timeout_s` (or the
    `timeout_s` given here) cancels the task. Class nodes run in a fresh actor (setup() once). Ray must
    already be initialized (in tests: the `ray_session` fixture). A node exception is re-raised as Ray's
    task error, which is also an instance of the original exception class.
    """
    import ray  # imported here: nodes must stay importable (and fast to import) without Ray

    if not ray.is_initialized():
        raise RuntimeError(
            "run_node_on_ray needs a running Ray; call ray.init() (or use the ray_session fixture)"
        )
    definition = _definition(defn_or_func)
    spec = definition.spec
    args = (dict(inputs or {}), dict(params or {}), node_id or spec.name, registry, check)
    options = ray_options(definition)
    actor: Any = None
    if spec.kind == "class":
        actor_class: Any = ray.remote(_NodeActor)
        actor = actor_class.options(**actor_options_of(options, system_restarts=0)).remote(definition)
        ref = actor.run.remote(*args)
    else:
        task: Any = ray.remote(_ray_call)
        ref = task.options(**options).remote(definition, *args)
    limit = timeout_s if timeout_s is not None else spec.timeout_s
    try:
        outputs, events, skipped = ray.get(ref, timeout=limit)
    except ray.exceptions.GetTimeoutError:
        if actor is None:
            ray.cancel(ref, force=True)
        raise NodeTimeoutError(
            f"node {spec.id} did not finish within {limit} s on Ray; raise its timeout_s or make it faster"
        ) from None
    finally:
        if actor is not None:
            ray.kill(actor)
    return NodeResult(outputs, events, skipped)
