"""The states of a run and of its nodes, as the engine has always exported them.

They are defined once, in `nodes.states` (below the store, which constrains its columns to them); this module
keeps the engine's import path working.
"""

from __future__ import annotations

from nodes.states import NodeStatus, RunStatus

__all__ = ["NodeStatus", "RunStatus"]
