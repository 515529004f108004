"""Insights on workflows with history (critical path and bottlenecks, caching, useless retries, flaky nodes,
resource requests, needless edges), and their edits applied as new workflow versions. See
`engine.insights.analyze` for what is found and how the saving is predicted, `engine.insights.unread` and
`engine.insights.edges` for needless edges, `engine.insights.service` for the whole path from a store."""

from __future__ import annotations

from engine.insights.analyze import Insight, Insights, analyze
from engine.insights.apply import Applied, OptimizeError, edited
from engine.insights.service import Optimization, optimize

__all__ = [
    "Applied",
    "Insight",
    "Insights",
    "Optimization",
    "OptimizeError",
    "analyze",
    "edited",
    "optimize",
]
