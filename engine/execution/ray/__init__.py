"""The Ray executor: everything that runs plans on Ray.

`executor` (`RayExecutor`, `RayRun`: the caller's side), `coordinator` (the named, detached actor that owns
runs), `run` (one run inside it: submission, completion, timeouts, maps), `submit` and `runtime_envs` (task
submission), `remote` and `wire` (what runs on workers and what travels), `iopool` (the warm pool of actors for
I/O-bound nodes), `plans`, `completions`, `priority`, `memory` and `metrics` (the coordinator's hot path and
upkeep). Import the concrete modules; this package module does no work and imports nothing at import time
(a node task's worker imports only what it runs).
"""
