"""Model references: what a `Model[sklearn]` port carries, and the per-process cache of loaded models.

A reference is a small JSON-friendly dict (it goes into the run's event log and result store, where a pickled
estimator must not), pointing at a model logged to MLflow:

```
{"uri": "models:/m-...", "model_id": "m-...", "run_id": "<MLflow run>", "parent_run_id": "...",
 "experiment_id": "1", "flavor": "sklearn", "estimator": "sklearn.linear_model.LogisticRegression",
 "params": {...}, "task": "classification", "label": "target", "features": ["a", "b"],
 "metrics": {"train_accuracy": 0.98, "test_accuracy": 0.95}, "signature": {"inputs": [...], "outputs": [...]}}
```

`predict` and `evaluate` load the model from MLflow by its `uri`; a worker process keeps the last models it
loaded (`load_model`), so a model is read once per process, not once per call.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import typesys
from rayweave_ml.errors import TrackingError

__all__ = ["MODEL", "REQUIRED_KEYS", "check_ref", "load_model"]

#: The port type of a scikit-learn model reference.
MODEL = typesys.ModelType("sklearn")
REQUIRED_KEYS = ("uri", "run_id", "flavor", "features", "task")


def check_ref(ref: Any, where: str) -> Mapping[str, Any]:
    """`ref` if it is a model reference of this plugin; raises `TrackingError` naming `where` otherwise."""
    missing = [key for key in REQUIRED_KEYS if not isinstance(ref, Mapping) or key not in ref]
    if missing:
        raise TrackingError(
            f"{where}: not a model reference (missing {missing}); wire the 'model' output of ml/train@1, "
            "ml/evaluate@1 or ml/select_best@1 here"
        )
    checked: Mapping[str, Any] = ref
    return checked


@functools.lru_cache(maxsize=8)
def load_model(tracking_uri: str, model_uri: str) -> Any:
    """The scikit-learn model logged at `model_uri`, loaded once per process (the 8 most recent are kept)."""
    import mlflow
    import mlflow.sklearn

    from rayweave_ml.tracking import client_for

    client_for(tracking_uri)  # the database initialised first
    mlflow.set_tracking_uri(tracking_uri)
    try:
        return mlflow.sklearn.load_model(model_uri)
    except Exception as exc:
        raise TrackingError(
            f"the model {model_uri!r} could not be loaded from MLflow at {tracking_uri!r}: {exc}; check that "
            "the run tracks to the MLflow the model was logged to"
        ) from exc
