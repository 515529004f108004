"""The quickstart workflow as a durable run on an embedded local Ray and SQLite (`python -m
examples.durable_quickstart`; `make demo` runs the ML pipeline of `examples.demo`).

Starts a local Ray bound to 127.0.0.1 (token authentication on), records the run in the SQLite database under
`RAYWEAVE_HOME` (default `./.rayweave`), shows the node states live while four jobs run in parallel, prints the
outputs and says how to look at the stored run afterwards.
"""

from __future__ import annotations


def main() -> int:
    """Run the quickstart durably with live node states; returns the exit status."""
    from rich.console import Console

    from cluster.ray_runtime import ensure_ray
    from cluster.settings import Settings
    from engine.compile import compile_workflow
    from engine.durable.runner import DurableRunner
    from examples import quickstart
    from serve.cli.run_cmd import follow, node_ids

    console = Console()
    settings = Settings()
    connection = ensure_ray(settings)
    console.print(
        f"[bold]rayweave demo[/bold]: local Ray at {connection.address} (loopback only, token auth on)"
    )
    console.print(f"runs are recorded in {settings.resolved_database_url}")
    plan = compile_workflow(quickstart.workflow)
    runner = DurableRunner(settings)
    handle = runner.submit(quickstart.workflow, quickstart.INPUTS)
    result = follow(handle, plan.name, console, live=True, nodes=node_ids(plan))
    console.print()
    console.print(f"run {result.run_id}: [bold]{result.status.value}[/bold]")
    for name, value in result.outputs.items():
        console.print(f"  {name} = {value!r}")
    console.print(f"look at it again with: .venv/bin/rayweave runs show {result.run_id}", soft_wrap=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
