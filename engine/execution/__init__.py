"""Running compiled plans: executors (in-process and Ray), the run coordinator, task wrapper, events, results.

Import the concrete modules (`engine.execution.executor`, `engine.execution.events`, ...); this package
module does no work and imports nothing at import time.
"""
