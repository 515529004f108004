"""What one `rayweave` invocation shares between its commands: the settings, built once.

The root callback of the app puts a `CliContext` in Typer's context object; every command reads the settings
from it (`settings_of(ctx)`) instead of building its own. The settings are read from the environment on first
use, so a command that needs none (`rayweave schema`, `rayweave types check`) does not fail on a malformed
`RAYWEAVE_*` variable it never reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from cluster.settings import Settings


@dataclass
class CliContext:
    """The state of one invocation: the installation's `Settings`, read on first use."""

    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The settings of this invocation, read from the environment once."""
        if self._settings is None:
            from cluster.settings import Settings

            self._settings = Settings()
        return self._settings


def settings_of(ctx: typer.Context, **overrides: Any) -> Settings:
    """The invocation's settings; `overrides` (a command's own options, None ones ignored) replace fields of a
    copy, validated as the environment's values are, e.g. `settings_of(ctx, ray_address=address)` for
    `--address`."""
    settings = ctx.ensure_object(CliContext).settings
    given = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_validate(settings.model_dump() | given) if given else settings


def start(ctx: typer.Context) -> None:
    """The root callback: one `CliContext` per invocation, shared by whichever command runs."""
    ctx.obj = CliContext()
