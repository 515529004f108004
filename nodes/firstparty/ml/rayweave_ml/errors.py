"""Errors of the ML nodes: each message names the node, the field at fault and what to do."""

from __future__ import annotations


class MLNodeError(Exception):
    """Base class of every error raised by an ML node."""


class EstimatorError(MLNodeError, ValueError):
    """An estimator name that is not allowed or not found, or params the estimator rejects."""


class ColumnError(MLNodeError, KeyError):
    """A column a node needs (the label, a model's feature) is not in its input table."""

    def __str__(self) -> str:
        # KeyError.__str__ quotes its argument; keep the readable message as is.
        return str(self.args[0]) if self.args else ""


class ParamError(MLNodeError, ValueError):
    """A param holds a value the node does not support (an unknown dataset, metric or task type)."""


class TrackingError(MLNodeError, RuntimeError):
    """MLflow tracking is not configured or not reachable, or a model reference cannot be used."""
