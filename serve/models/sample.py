"""A small registered model for tests, benchmarks and the guide: iris LogisticRegression logged with its
signature and registered in MLflow, its run tagged like a rayweave training node's (`rayweave.run_id`, ...).

The iris data ships with scikit-learn (nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def register_iris(
    tracking_uri: str,
    name: str = "iris",
    *,
    artifacts_uri: str = "",
    tags: dict[str, str] | None = None,
    max_iter: int = 200,
) -> Any:
    """Train, log and register an iris classifier; returns the MLflow `ModelVersion`.

    `tags` are set on the MLflow run (e.g. the `rayweave.*` lineage tags). Artifacts go to `artifacts_uri`, by
    default `mlartifacts` beside a SQLite tracking database.
    """
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    if not artifacts_uri and tracking_uri.startswith("sqlite:///"):
        # Beside the database, never MLflow's default `./mlruns` in whatever directory this runs in.
        artifacts_uri = str(Path(tracking_uri[len("sqlite:///") :]).parent / "mlartifacts")
    experiment = f"rayweave-sample-{name}"
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=artifacts_uri or None)
    mlflow.set_experiment(experiment)
    data = load_iris(as_frame=True)
    features = data.data
    model = LogisticRegression(max_iter=max_iter).fit(features, data.target)
    with mlflow.start_run(tags=tags or {}) as run:
        signature = infer_signature(features, model.predict(features))
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=features.head(2),
            pip_requirements=["scikit-learn", "pandas"],  # skips inferring them (seconds of work)
        )
    return mlflow.register_model(f"runs:/{run.info.run_id}/model", name)


def iris_rows(n: int = 1) -> list[dict[str, float]]:
    """`n` iris rows as records (the model's input columns)."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).data
    return [dict(frame.iloc[i % len(frame)]) for i in range(n)]
