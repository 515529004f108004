"""Estimators by dotted name (scikit-learn only, unless allowed otherwise), and metrics by task type."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from rayweave_ml.errors import EstimatorError, ParamError

__all__ = [
    "ALLOWED_PREFIXES",
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "make_estimator",
    "metrics_for",
    "resolve_estimator",
    "task_of",
]

#: Module prefixes estimators may come from; the node context's config key `ml.estimator_prefixes`
#: (comma-separated) adds others.
ALLOWED_PREFIXES: tuple[str, ...] = ("sklearn.",)
CLASSIFICATION_METRICS = ("accuracy", "f1_macro", "precision_macro", "recall_macro")
REGRESSION_METRICS = ("rmse", "mae", "r2")


def resolve_estimator(name: str, where: str, allowed: Sequence[str] = ALLOWED_PREFIXES) -> type:
    """The estimator class `name` (`package.module.Class`); `where` names the node and param in errors."""
    module_name, _, attr = name.rpartition(".")
    if not module_name or not any(name.startswith(prefix) for prefix in allowed):
        raise EstimatorError(
            f"{where}: estimator {name!r} is not allowed; give the dotted name of a scikit-learn estimator, "
            f"e.g. 'sklearn.linear_model.LogisticRegression' (allowed module prefixes: {list(allowed)})"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    cls = getattr(module, attr, None) if module is not None else None
    if not isinstance(cls, type) or not hasattr(cls, "fit") or not hasattr(cls, "get_params"):
        raise EstimatorError(
            f"{where}: estimator {name!r} was not found (no estimator class {attr!r} in module "
            f"{module_name!r}); check the spelling, e.g. 'sklearn.ensemble.RandomForestClassifier'"
        )
    return cls


def make_estimator(cls: type, params: Mapping[str, Any], where: str) -> Any:
    """`cls(**params)`, with its params validated now (scikit-learn validates them only when fitting)."""
    try:
        valid = sorted(cls().get_params())
    except Exception:
        valid = []
    unknown = sorted(set(params) - set(valid)) if valid else []
    if unknown:
        raise EstimatorError(f"{where}: {cls.__name__} has no param(s) {unknown}; use some of {valid}")
    try:
        estimator = cls(**params)
        validate = getattr(estimator, "_validate_params", None)
        if callable(validate):
            validate()
    except (TypeError, ValueError) as exc:
        raise EstimatorError(
            f"{where}: {cls.__name__} rejects params {dict(params)}: {exc}; fix the value(s)"
        ) from exc
    return estimator


def task_of(estimator: Any, task: str, where: str) -> str:
    """`classification` or `regression`: `task` as given, or the estimator's kind when `task` is `auto`."""
    if task in ("classification", "regression"):
        return task
    if task != "auto":
        raise ParamError(f"{where}: task {task!r} is not one of 'auto', 'classification', 'regression'")
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    raise ParamError(
        f"{where}: cannot tell whether {type(estimator).__name__} classifies or regresses; set task to "
        "'classification' or 'regression'"
    )


def metrics_for(task: str, y_true: Any, y_pred: Any) -> dict[str, float]:
    """The metrics of a task type: accuracy, macro F1/precision/recall, or RMSE, MAE and R²."""
    from sklearn import metrics

    if task == "classification":
        return {
            "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
            "f1_macro": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "precision_macro": float(
                metrics.precision_score(y_true, y_pred, average="macro", zero_division=0)
            ),
            "recall_macro": float(metrics.recall_score(y_true, y_pred, average="macro", zero_division=0)),
        }
    return {
        "rmse": float(metrics.root_mean_squared_error(y_true, y_pred)),
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        "r2": float(metrics.r2_score(y_true, y_pred)),
    }
