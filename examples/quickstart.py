"""Quickstart: four independent "jobs" run in parallel with live progress, then a join sums their results.

Run it with `rayweave run examples/quickstart.py --input size=4` or `python -m examples.quickstart` (live node
states in the terminal), or from Python with `engine.run(workflow, {"size": 4})`. The jobs take about 1.2 s
once Ray is up.
"""

from __future__ import annotations

import time

from engine.workflow import Workflow
from nodes import context, node


# Not cached, so that every run of the demo shows the jobs working (see cached_rerun.py for caching).
# The jobs mostly wait, so each asks Ray for half a CPU: all four fit at once even on a 2-core machine.
@node(plugin="examples", category="demo", cache=False, resources={"num_cpus": 0.5})
def crunch(size: int, *, job: str, seconds: float = 1.0) -> int:
    """Pretend to work for `seconds`, reporting progress in ten steps; returns a result derived from `size`."""
    ctx = context.current()
    for step in range(1, 11):
        time.sleep(seconds / 10)
        ctx.progress(step / 10, f"{job}: step {step}/10")
    ctx.logger.info("%s finished", job)
    return size * len(job)


@node(plugin="examples", category="demo")
def join(a: int, b: int, c: int, d: int) -> dict[str, int]:
    """Combine the four job results into a small report."""
    return {"total": a + b + c + d, "largest": max(a, b, c, d)}


workflow = Workflow("quickstart", description="Four parallel jobs with live progress, then a join.")
size = workflow.input("size", "Int", default=4)
jobs = [
    workflow.add(name, crunch, size=size, params={"job": name, "seconds": seconds})
    for name, seconds in (("fetch", 1.0), ("clean", 0.8), ("train", 1.2), ("score", 0.6))
]
report = workflow.add("report", join, a=jobs[0], b=jobs[1], c=jobs[2], d=jobs[3])
workflow.output("report", report)

#: Inputs used when the example runs without any (`rayweave run` uses the declared defaults too).
INPUTS = {"size": 4}


def main() -> None:
    """Run the quickstart on an embedded local Ray with live node states (what `make demo` shows)."""
    from serve.cli.run_cmd import run_live

    run_live(workflow, INPUTS)


if __name__ == "__main__":
    main()
