"""Fixtures of the ML plugin's tests: the plugin loaded in its runtime environment, MLflow under tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from nodes import Catalog

ML_PLUGIN = Path(__file__).resolve().parents[4] / "nodes" / "firstparty" / "ml"


@pytest.fixture(scope="session")
def ml_nodes(ray_session: Any) -> dict[str, Any]:
    """The ML plugin's node definitions by type id, read inside its runtime environment."""
    from nodes.plugins.testing import load_plugin

    return load_plugin(ML_PLUGIN)


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite database with MLflow's tables, made once (its migrations take seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}", registry_uri=f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def mlflow_config(tmp_path: Path, mlflow_template: Path) -> dict[str, str]:
    """A node context's config tracking to a fresh MLflow SQLite database under this test's tmp_path (a copy
    of the empty template)."""
    shutil.copyfile(mlflow_template, tmp_path / "mlflow.db")
    return {
        "mlflow.tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "mlflow.artifacts_uri": (tmp_path / "mlartifacts").as_uri(),
    }


@pytest.fixture(scope="module")
def ml_catalog(ml_nodes: dict[str, Any]) -> Catalog:
    """A catalog of the built-in nodes and the ML plugin's (read in its runtime environment)."""
    from nodes.plugins import open_plugin_dir
    from nodes.plugins.loader import load_plugins

    catalog = Catalog.builtin()
    report = load_plugins([open_plugin_dir(ML_PLUGIN)], catalog, timeout_s=240)
    assert not report.failed, report.failed
    return catalog
