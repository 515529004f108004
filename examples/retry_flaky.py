"""Retry with a flaky node: the first two attempts fail with a transient error, the third succeeds.

The engine owns retries: the node's policy (3 attempts, exponential backoff with jitter, only on
`ConnectionError`) is applied inside the Ray task, and every retry is a `node.retrying` event. The failures
are counted in a file (`state_dir` input) so the example is deterministic across processes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from engine.workflow import Workflow
from nodes import context, node


@node(
    plugin="examples",
    retries={"max_attempts": 3, "backoff": "exponential", "initial_s": 0.1, "retry_on": ["ConnectionError"]},
    cache=False,
)
def flaky_fetch(state_dir: str, *, fail_times: int = 2) -> str:
    """Fail with `ConnectionError` the first `fail_times` calls (counted in `state_dir`), then answer."""
    counter = Path(state_dir) / "attempts"
    attempts = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempts))
    if attempts <= fail_times:
        raise ConnectionError(f"upstream service hiccup (call {attempts})")
    context.current().logger.info("succeeded on call %d", attempts)
    return f"payload after {attempts} calls"


workflow = Workflow("retry-flaky", description="A flaky node that succeeds on its third attempt.")
state = workflow.input("state_dir", "String")
workflow.output("answer", workflow.add("fetch", flaky_fetch, state_dir=state))


def inputs() -> dict[str, str]:
    """Fresh inputs: a new empty state directory, so the first two attempts fail again."""
    return {"state_dir": tempfile.mkdtemp(prefix="rayweave-flaky-")}
