"""Tracking to a database MLflow migrates itself (PostgreSQL): parallel trainings on a fresh database create its
tables once, and every training's nested run lands there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.settings import Settings
from nodes import Catalog
from tests.engine.store.sql_support import postgres_database

from .test_grid_workflow import EXAMPLE

pytestmark = [pytest.mark.ray, pytest.mark.slow]

GRID = [{"n_estimators": 5, "max_depth": depth, "random_state": 0} for depth in (1, 2, 3, 4)]


def test_parallel_trainings_on_a_fresh_postgresql_tracking_database(
    ml_catalog: Catalog, tmp_path: Path
) -> None:
    import mlflow

    import engine

    with postgres_database("rayweave_mlflow") as url:
        tracking = url.replace("postgresql://", "postgresql+psycopg://", 1) if "+" not in url else url
        settings = Settings(
            home=tmp_path / "home",
            mlflow_tracking_uri=tracking,
            mlflow_artifacts_uri=(tmp_path / "artifacts").as_uri(),
        )
        document = json.loads(EXAMPLE.read_text())
        result = engine.run(document, {"grid": GRID}, catalog=ml_catalog, settings=settings, cache=False)
        assert result.ok, result.errors
        client = mlflow.MlflowClient(tracking, registry_uri=tracking)
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string="tags.`rayweave.role` = 'node'",
        )
        trainings = [r for r in runs if r.data.tags.get("rayweave.node_type") == "ml/train@1"]
        assert len(trainings) == len(GRID)
        assert len({r.data.tags["mlflow.parentRunId"] for r in trainings}) == 1
        # Artifacts go where the settings say, never to ./mlruns of whichever worker created the experiment.
        artifacts = (tmp_path / "artifacts").as_uri()
        assert all(r.info.artifact_uri.startswith(artifacts) for r in trainings), trainings[
            0
        ].info.artifact_uri
