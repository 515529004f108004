"""A pytest-xdist `--dist loadfile` scheduler that survives a crashed test process without hanging the run.

pytest-xdist 3.8.0 (the newest release) hangs a `--dist loadfile` run after a test process crashes and is
replaced, in three known ways (pytest-xdist issues 1323, 1327 and 1378; the fixes are merged but unreleased):

- the crashed process's whole workload goes back on the queue, the files it had finished included; each comes
  back later as an empty unit of work that no test completes, so no process is handed more work and the run
  waits forever at its end (a CI run of ours stopped at 98% with nothing running);
- a replacement process handed one file of one test waits for a second test that never comes;
- the test the process died on is handed to the replacement and run again, which may crash it again.

`make test` runs this scheduler through the `pytest_xdist_make_scheduler` hook of tests/conftest.py. It puts
back only the files the crashed process had not finished, without the test it died on (xdist has already
reported that test as failed), never hands out an empty unit, and tells a process with fewer than two tests
queued and nothing left to give that there is no more work, so it runs its last test and ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xdist.scheduler import LoadFileScheduling

if TYPE_CHECKING:
    from xdist.workermanage import WorkerController


class CrashSafeLoadFileScheduling(LoadFileScheduling):  # type: ignore[misc]  # xdist.scheduler is untyped here
    """`--dist loadfile`, whole files to a process at a time, with the crash handling described above."""

    def remove_node(self, node: WorkerController) -> str | None:
        """Forget a finished or crashed process; on a crash, requeue its unfinished files without the crashed test.

        Returns the test the process crashed on, or None when it had no test pending (a normal shutdown).
        """
        workload = self.assigned_work.pop(node)
        crashitem: str | None = next(
            (nodeid for unit in workload.values() for nodeid, done in unit.items() if not done),
            None,
        )
        if crashitem is None:
            return None
        workload[self._split_scope(crashitem)][crashitem] = True
        for scope, unit in workload.items():
            if not all(unit.values()):
                self.workqueue[scope] = unit
        for other in self.assigned_work:
            self._reschedule(other)
        return crashitem

    def _reschedule(self, node: WorkerController) -> None:
        """Hand a process a file when it is nearly out of tests; tell it to finish when nothing is left."""
        if node.shutting_down or node not in self.registered_collections:
            return  # shutting down, or a replacement still collecting: `schedule()` starts it when it is done
        if self._pending_of(self.assigned_work[node]) > 2:
            return
        self._drop_finished_units()
        if self.workqueue:
            self._assign_work_unit(node)
        while self.workqueue and self._pending_of(self.assigned_work[node]) < 2:
            self._assign_work_unit(node)
        if not self.workqueue:
            node.shutdown()

    def _drop_finished_units(self) -> None:
        for scope in [scope for scope, unit in self.workqueue.items() if all(unit.values())]:
            del self.workqueue[scope]


def make_scheduler(config: Any, log: Any) -> CrashSafeLoadFileScheduling:
    """The scheduler for `--dist loadfile` (called by tests/conftest.py's `pytest_xdist_make_scheduler`)."""
    return CrashSafeLoadFileScheduling(config, log)
