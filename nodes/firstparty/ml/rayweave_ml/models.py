"""Model references: what a `Model[sklearn]` port carries, and the per-process cache of loaded models.

A reference is a small JSON-friendly dict (it goes into the run's event log and result store, where a pickled
estimator must not), pointing at a model logged to MLflow:

```
{"uri": "models:/m-...", "model_id": "m-...", "run_id": "<MLflow run>", "parent_run_id": "...",
 "experiment_id": "1", "flavor": "sklearn", "estimator": "sklearn.linear_model.LogisticRegression",
 "params": {...}, "task": "classification", "label": "target", "features": ["a", "b"],
 "metrics": {"train_accuracy": 0.98, "test_accuracy": 0.95}, "signature": {"inputs": [...], "outputs": [...]}}
```

`predict`, `evaluate` and `register` take the references of both trainers: `Model[sklearn]` (`ml/train@1`) and
`Model[pytorch]` (`ml/train_torch@1`, whose reference adds `classes`, the label of each output column for
classification); any other flavor is refused when the workflow is compiled. They load the model from MLflow by
its `uri`; a worker process keeps the last models it loaded (`load_model`), so a model is read once per process,
not once per call.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import typesys
from rayweave_ml.errors import TrackingError

__all__ = ["ANY_MODEL", "MODEL", "REQUIRED_KEYS", "TORCH_MODEL", "check_ref", "load_model", "predictions"]

#: The port type of a scikit-learn model reference.
MODEL = typesys.ModelType("sklearn")
#: The port type of a PyTorch model reference (`ml/train_torch@1`).
TORCH_MODEL = typesys.ModelType("pytorch")
#: What predict, evaluate, select_best and register take: a reference of either flavor.
ANY_MODEL = typesys.union(MODEL, TORCH_MODEL)
FLAVORS = ("sklearn", "pytorch")
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
    if checked["flavor"] not in FLAVORS:
        raise TrackingError(
            f"{where}: a {checked['flavor']!r} model cannot be used here (flavors: {list(FLAVORS)}); wire a "
            "model of ml/train@1 or ml/train_torch@1"
        )
    return checked


@functools.lru_cache(maxsize=8)
def load_model(tracking_uri: str, model_uri: str, flavor: str = "sklearn") -> Any:
    """The model logged at `model_uri` (a scikit-learn estimator, or a torch module for `pytorch`), loaded once
    per process (the 8 most recent are kept)."""
    import mlflow

    from rayweave_ml.tracking import client_for

    client_for(tracking_uri)  # the database initialised first
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)  # process-wide: never another installation's
    try:
        if flavor == "pytorch":
            import mlflow.pytorch

            module = mlflow.pytorch.load_model(model_uri)
            module.eval()
            return module
        import mlflow.sklearn

        return mlflow.sklearn.load_model(model_uri)
    except Exception as exc:
        raise TrackingError(
            f"the model {model_uri!r} could not be loaded from MLflow at {tracking_uri!r}: {exc}; check that "
            "the run tracks to the MLflow the model was logged to"
        ) from exc


def predictions(ref: Mapping[str, Any], model: Any, frame: Any) -> Any:
    """The predictions of `model` (loaded by `load_model` for `ref`) for the feature columns of `frame`: label
    values for classification (a torch model's highest logit mapped through `ref["classes"]`), numbers for
    regression."""
    features = frame[list(ref["features"])]
    if ref["flavor"] != "pytorch":
        return model.predict(features)
    import numpy as np
    import torch

    with torch.no_grad():
        output = model(torch.as_tensor(features.to_numpy(dtype=np.float32))).numpy()
    if ref["task"] == "classification":
        classes = np.asarray(list(ref["classes"]), dtype=object)
        return list(classes[output.argmax(axis=1)])
    return output[:, 0]
