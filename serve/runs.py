"""Starting runs from the API without owning them.

`RunLauncher` is the small interface the routes use; `DurableRunLauncher` implements it. It validates the
document and inputs (422 with diagnostics before anything is recorded) and asks the engine's `DurableRunner`
to record the run (idempotently: a repeated `Idempotency-Key` returns the first run and starts nothing) and
execute it; the engine's own sink appends every event to the store and keeps run and node status and outputs
current, its coordinator heartbeats the run, and the recovery sweep resumes it if that coordinator dies.
Every API replica therefore answers from the store alone.

A run recorded but not started (the engine was unreachable at that moment, e.g. Ray is down) is not undone: it
is durable, stays `queued`, and the recovery sweep starts it once the engine is back. The launch says so
(`deferred`), so the client does not submit it again, which would make a second run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import WorkflowInputError, WorkflowValidationError
from engine.store.errors import RunQuotaExceededError
from nodes.ids import RunId, WorkflowId, new_run_id
from nodes.states import RunStatus
from serve.errors import InvalidWorkflowError

if TYPE_CHECKING:
    from cluster.settings import Settings
    from engine.compile.plan import Plan
    from engine.store import Store
    from engine.store.models import Run
    from nodes import Catalog

log = logging.getLogger("rayweave.serve.runs")


@dataclass(frozen=True)
class LaunchedRun:
    """The stored run and whether this request created it (False: an idempotent repeat); `deferred`: it was
    recorded but the engine could not start it now, so the recovery sweep will."""

    run: Run
    created: bool
    deferred: bool = False


class RunLauncher(Protocol):
    """What the API needs to start and stop runs."""

    def launch(
        self,
        *,
        owner: str,
        document: Mapping[str, Any],
        inputs: Mapping[str, Any],
        workflow_id: WorkflowId | None = None,
        workflow_version: int | None = None,
        idempotency_key: str | None = None,
        cache: bool = True,
        targets: Sequence[str] | None = None,
        inputs_from: RunId | None = None,
    ) -> LaunchedRun:
        """Record the run (idempotently) and start it; raises `InvalidWorkflowError` for bad documents/inputs.

        `cache=False`: run every node, without reading or writing the result cache. A run recorded that could
        not be started comes back `deferred` (never undone, never an error: the client must not submit again).
        `targets`: run only those nodes and their ancestors; `inputs_from` (with `targets`): take the outputs
        of the targets' upstream nodes recorded in that run (`ConflictError` when one has none).
        """

    def cancel(self, run_id: RunId) -> None:
        """Ask the engine to stop the run (a no-op for finished runs)."""

    def close(self) -> None:
        """Stop tracking runs (their execution continues where it runs)."""


class DurableRunLauncher:
    """Starts runs through the engine's `DurableRunner` (engine.durable): node results are written to the
    durable result store, the engine's own sink records events, status and outputs, the coordinator heartbeats
    the run, and the recovery sweep resumes it if its coordinator dies. The API only validates and asks."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        settings: Settings,
        *,
        executor: str = "ray",
        max_active_runs: int | None = None,
    ) -> None:
        from engine.durable.runner import DurableRunner

        #: Each owner's quota of queued and running runs (None: no quota); a launch beyond it is a 429.
        self.max_active_runs = max_active_runs
        self.store = store
        self.catalog = catalog
        self.settings = settings
        self.executor = executor
        self._handles: dict[RunId, Any] = {}
        self._lock = threading.Lock()
        self.runner = DurableRunner(
            settings, store=store, executor=executor, catalog=catalog, cache=True, cache_per_owner=True
        )

    def launch(
        self,
        *,
        owner: str,
        document: Mapping[str, Any],
        inputs: Mapping[str, Any],
        workflow_id: WorkflowId | None = None,
        workflow_version: int | None = None,
        idempotency_key: str | None = None,
        cache: bool = True,
        targets: Sequence[str] | None = None,
        inputs_from: RunId | None = None,
    ) -> LaunchedRun:
        """See `RunLauncher.launch`."""
        from engine.durable.rerun import NoRecordedInputsError

        repeat = idempotency_key is not None and self.store.runs.get_by_idempotency_key(
            owner, idempotency_key
        )
        # Compiled once, here: 422 with diagnostics before anything is recorded (an idempotent repeat is
        # answered with the first run, which the runner looks up after compiling). A re-run is not optimized,
        # so that its node is not fused with the nodes whose recorded outputs it reads.
        plan = None if repeat else self._compile(document, targets, optimize=inputs_from is None)
        # Chosen here, so that after a failure the store says whether this request recorded the run.
        run_id = new_run_id()
        try:
            launched = self.runner.launch(
                None if workflow_id is not None else dict(document),
                inputs,
                owner=owner,
                idempotency_key=idempotency_key,
                workflow_id=workflow_id,
                workflow_version=workflow_version,
                cache=cache,
                run_id=run_id,
                plan=plan,
                max_active=self.max_active_runs,
                targets=targets,
                inputs_from=inputs_from,
            )
        except NoRecordedInputsError as exc:  # nothing recorded
            from serve.errors import ConflictError

            raise ConflictError(str(exc)) from None
        except RunQuotaExceededError as exc:  # nothing recorded
            from serve.errors import RateLimitedError

            raise RateLimitedError(
                f"{exc}; this server allows {exc.limit} queued or running runs per user",
                headers={"Retry-After": "5"},
            ) from None
        except WorkflowInputError as exc:  # checked before anything is recorded
            raise InvalidWorkflowError(
                str(exc), [{"code": "inputs", "severity": "error", "message": str(exc), "field": "inputs"}]
            ) from None
        except Exception as exc:
            recorded = self._recorded(run_id)
            if recorded is not None:
                # Stored before the start failed: the run is durable and the recovery sweep starts it (it is
                # `queued`, owned from its creation, and counts as lost after the start grace). Undoing it could
                # race a coordinator that did start it; answering "submit again" would make a second run.
                log.warning(
                    "run %s of owner %s is recorded but could not be started now (%s); the recovery sweep "
                    "will start it",
                    run_id,
                    owner,
                    type(exc).__name__,
                    exc_info=exc,
                )
                return LaunchedRun(recorded, True, deferred=True)
            if isinstance(exc, KeyError | ValueError):
                raise  # store errors (404, 409) are answered by the problem handlers
            from engine.store import backend_errors
            from serve.errors import UnavailableError

            if isinstance(exc, backend_errors()):
                # The driver's text can quote the stored values: serve.problems logs it and answers generically.
                raise
            # Only the kind of error: its text may come from any layer below (a database driver quoting values).
            log.error("the engine could not start a run of owner %s", owner, exc_info=exc)
            raise UnavailableError(
                f"the engine could not start the run ({type(exc).__name__}; the server log has the details); "
                "nothing was recorded: check that Ray is reachable (GET /v1/ready) and submit again"
            ) from exc
        if launched.created:
            with self._lock:
                self._handles[launched.run.id] = launched.handle
            threading.Thread(
                target=self._forget, args=(launched.run.id, launched.handle), daemon=True
            ).start()
        return LaunchedRun(launched.run, launched.created)

    def _recorded(self, run_id: RunId) -> Run | None:
        """The run `run_id` if the store has it (None when it does not, or cannot say)."""
        try:
            return self.store.runs.get(run_id)
        except Exception:  # not recorded (NotFoundError), or the database is away: nothing to answer with
            return None

    def _forget(self, run_id: RunId, handle: Any) -> None:
        # Only to drop the handle when the run ends; the engine records the outcome itself.
        try:
            handle.result()
        except Exception as exc:
            log.debug("run %s ended with %s", run_id, exc)
        finally:
            with self._lock:
                self._handles.pop(run_id, None)

    def _compile(
        self, document: Mapping[str, Any], targets: Sequence[str] | None = None, *, optimize: bool = True
    ) -> Plan:
        """The document compiled with the server's catalog, or `InvalidWorkflowError` with its diagnostics."""
        from engine.compile import compile_workflow

        try:
            return compile_workflow(
                dict(document), self.catalog, optimize=optimize, targets=list(targets) if targets else None
            )
        except WorkflowValidationError as exc:
            errors = [d for d in exc.diagnostics if d.severity == "error"]
            raise InvalidWorkflowError(
                f"workflow {document.get('name', '?')!r} has {len(errors)} error(s); "
                "fix them (POST /v1/workflows/validate shows them without running)",
                [d.to_json() for d in errors],
            ) from None

    def cancel(self, run_id: RunId) -> None:
        """See `RunLauncher.cancel`. A run launched by another replica is stopped through its status."""
        with self._lock:
            handle = self._handles.get(run_id)
        if handle is not None:
            handle.cancel()
            return
        if self.executor == "ray" and self._cancel_on_coordinator(run_id, self.settings.coordinators):
            return
        from engine.store import RunStateError

        try:
            self.store.runs.update_status(run_id, RunStatus.CANCELLED, only_from=RunStatus.active())
        except RunStateError:
            return

    @staticmethod
    def _cancel_on_coordinator(run_id: RunId, count: int = 1) -> bool:
        """Cancel a run another replica launched, through the cluster's named coordinator actor that holds it
        (the one its id hashes to first; a sibling when that one had died: `engine.execution.ray.coordinators`)."""
        try:
            import ray

            from cluster.actors import find_actor
            from engine.execution.ray.coordinators import coordinator_names, slot_of
        except Exception as exc:  # no Ray here: fall back to the store
            log.info("run %s: no coordinator to cancel it (%s); cancelling through the store", run_id, exc)
            return False
        names = coordinator_names(count)
        first = slot_of(run_id, len(names))
        for name in names[first:] + names[:first]:
            try:
                coordinator = find_actor(name)
                if coordinator is None:
                    continue
                ray.get(coordinator.cancel.remote(run_id), timeout=10)
                return True
            except Exception as exc:  # it does not hold the run (restarted, or a sibling has it)
                log.info("run %s: coordinator %s could not cancel it (%s)", run_id, name, exc)
        log.info("run %s: no coordinator holds it; cancelling through the store", run_id)
        return False

    def close(self) -> None:
        """Forget the handles; the runs go on in their coordinators."""
        with self._lock:
            self._handles.clear()


def launcher_for(
    store: Store, catalog: Catalog, settings: Settings, *, executor: str, max_active_runs: int | None = None
) -> RunLauncher:
    """The launcher the server uses: durable runs through the engine's `DurableRunner`."""
    return DurableRunLauncher(store, catalog, settings, executor=executor, max_active_runs=max_active_runs)
