"""`rayweave ray start|status|stop`: keep a local Ray running between commands, so runs skip its start.

```
rayweave ray start [--num-cpus N] [--json]    start the embedded Ray (loopback only, token auth) in the background
rayweave ray status [--json]                  the running one's address and process, or exit 1 when none runs
rayweave ray stop [--json]                    stop it
```
While it runs, `rayweave run` (and anything else that would start an embedded Ray for the same `RAYWEAVE_HOME`
with no `RAYWEAVE_RAY_ADDRESS`) joins it instead: about 3 s less per command (see `cluster.local_ray`).
Exit status: 0 on success, 1 when it failed or (status) none runs.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from serve.cli.context import settings_of
from serve.cli.options import JsonOption


def _report(as_json: bool, doc: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(doc) if as_json else text)


def register(app: typer.Typer) -> None:
    """Add the `ray` group to the `rayweave` app."""
    group = typer.Typer(
        help="Keep a local Ray running between commands (loopback only, token auth on).", no_args_is_help=True
    )

    @group.command("start")
    def start(
        ctx: typer.Context,
        num_cpus: int | None = typer.Option(
            None, "--num-cpus", min=1, help="CPUs of the local Ray (default: RAYWEAVE_RAY_NUM_CPUS, or all)."
        ),
        as_json: JsonOption = False,
    ) -> None:
        """Start a local Ray in the background; `rayweave run` then joins it instead of starting one."""
        from cluster.errors import ClusterConnectionError
        from cluster.local_ray import start_local_ray

        settings = settings_of(ctx)
        try:
            held, started = start_local_ray(settings.home, num_cpus or settings.ray_num_cpus)
        except ClusterConnectionError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        verb = "started" if started else "already running"
        _report(
            as_json,
            {**held.to_json(), "started": started},
            f"local Ray {verb} at {held.address} (pid {held.pid}); `rayweave run` joins it until "
            "`rayweave ray stop`",
        )

    @group.command("status")
    def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
        """Whether a local Ray started by `rayweave ray start` runs, and where (exit status 1 when none)."""
        from cluster.local_ray import recorded_ray

        held = recorded_ray(settings_of(ctx).home)
        if held is None:
            _report(
                as_json,
                {"running": False},  # not a state: whether a held Ray answers (the --json contract)
                "no local Ray is running (start one with `rayweave ray start`)",
            )
            raise typer.Exit(1)
        answer = {**held.to_json(), "running": True}  # not a state: whether a held Ray answers
        _report(as_json, answer, f"local Ray at {held.address} (pid {held.pid})")

    @group.command("stop")
    def stop(ctx: typer.Context, as_json: JsonOption = False) -> None:
        """Stop the local Ray started by `rayweave ray start` (nothing to do when none runs)."""
        from cluster.errors import ClusterConnectionError
        from cluster.local_ray import stop_local_ray

        try:
            held = stop_local_ray(settings_of(ctx).home)
        except ClusterConnectionError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        if held is None:
            _report(as_json, {"stopped": False}, "no local Ray was running")
        else:
            _report(as_json, {**held.to_json(), "stopped": True}, f"stopped the local Ray at {held.address}")

    app.add_typer(group, name="ray")
