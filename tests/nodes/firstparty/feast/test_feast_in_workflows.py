"""The Feast nodes in workflows run by the engine on Ray, with the installation's data roots enforced: the
repository and the local files it names must lie below them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nodes import Catalog
from nodes.plugins import open_plugin_dir
from tests.nodes.firstparty.feast.conftest import FEAST_PLUGIN
from tests.nodes.firstparty.feast.repos import hour, make_repo

pytestmark = [pytest.mark.ray, pytest.mark.slow]

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips"]


GUIDE = Path(__file__).resolve().parents[4] / "docs" / "guides" / "feature-stores.md"


@pytest.fixture(scope="module")
def catalog(ray_session: Any) -> Catalog:
    """The built-in catalog with the Feast plugin loaded, as the engine and the server load plugins."""
    from nodes.plugins.loader import load_plugins

    catalog = Catalog.builtin()
    report = load_plugins([open_plugin_dir(FEAST_PLUGIN)], catalog)
    assert not report.failed, report.failed
    return catalog


def test_the_guides_workflows_compile(catalog: Catalog) -> None:
    from engine.execution.api import compile_for_run

    blocks = re.findall(r"```json\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    docs = [doc for doc in map(json.loads, blocks) if doc.get("format") == "rayweave.workflow/1"]
    assert [doc["name"] for doc in docs] == ["driver-training-set", "driver-scoring"]
    for doc in docs:
        plan = compile_for_run(doc, catalog=catalog)
        assert any(node.type_id.startswith("feast/") for node in plan.nodes), doc["name"]


def _document(feast_node: dict[str, Any]) -> dict[str, Any]:
    """Entities read from a Parquet file, then `feast_node` (wired to `read.table`), its table as output."""
    return {
        "format": "rayweave.workflow/1",
        "name": "feast-features",
        "inputs": {"entities": {"type": "String"}, "repo": {"type": "String"}},
        "nodes": {
            "read": {"type": "builtin/read_parquet@1", "in": {"path": "$inputs.entities"}},
            "features": feast_node,
        },
        "outputs": {"table": "features.table"},
    }


TRAINING_SET = _document(
    {
        "type": "feast/historical_features@1",
        "in": {"entities": "read.table", "repo": "$inputs.repo"},
        "params": {"features": FEATURES},
    }
)

SERVING = _document(
    {
        "type": "feast/online_features@1",
        "in": {"entities": "read.table", "repo": "load.repo"},  # wired to the load's output: runs after it
        "params": {"features": FEATURES},
    }
)
SERVING["outputs"]["loaded"] = "load.views"
SERVING["nodes"]["load"] = {
    "type": "feast/materialize@1",
    "in": {
        "repo": "$inputs.repo",
        "start": {"value": hour(-10).isoformat()},
        "end": {"value": hour(6).isoformat()},
    },
}


@pytest.fixture
def installation(tmp_path: Path) -> tuple[Any, Path]:
    """Settings whose only data root is `tmp_path/data`, holding an entity table `entities.parquet`."""
    from cluster.settings import Settings

    data = tmp_path / "data"
    data.mkdir()
    entities = pa.table({"driver_id": pa.array([2, 1], pa.int64()), "event_timestamp": [hour(3), hour(5)]})
    pq.write_table(entities, data / "entities.parquet")
    return Settings(home=tmp_path / "home", data_roots=[data]), data


def _run(doc: dict[str, Any], repo: Path, installation: tuple[Any, Path], catalog: Catalog) -> Any:
    import engine

    settings, data = installation
    inputs = {"entities": str(data / "entities.parquet"), "repo": str(repo)}
    return engine.run(doc, inputs, catalog=catalog, settings=settings, cache=False)


def test_a_training_set_from_a_repository_below_the_data_roots(
    catalog: Catalog, installation: tuple[Any, Path]
) -> None:
    repo = make_repo(installation[1] / "features")
    result = _run(TRAINING_SET, repo, installation, catalog)
    assert result.outputs["table"].to_pylist() == [
        {"driver_id": 2, "event_timestamp": hour(3), "conv_rate": 0.3, "trips": 7},
        {"driver_id": 1, "event_timestamp": hour(5), "conv_rate": 0.9, "trips": 30},
    ]


def test_a_repository_outside_the_data_roots_is_refused(
    catalog: Catalog, installation: tuple[Any, Path], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "elsewhere")
    error = _run(TRAINING_SET, repo, installation, catalog).nodes["features"].error
    assert error.type == "AccessDeniedError"
    assert (
        f"feast/historical_features@1: input port 'repo': {str(repo)!r} is outside the data roots"
        in error.message
    )
    assert "RAYWEAVE_DATA_ROOTS" in error.message


def test_a_file_source_outside_the_data_roots_is_refused(
    catalog: Catalog, installation: tuple[Any, Path], tmp_path: Path
) -> None:
    # The repository is below the root, but its feature view reads a Parquet file from outside it.
    repo = make_repo(installation[1] / "features", source_path=tmp_path / "outside" / "stats.parquet")
    error = _run(TRAINING_SET, repo, installation, catalog).nodes["features"].error
    assert error.type == "AccessDeniedError"
    assert (
        "feast/historical_features@1: file source 'driver_stats_source' of feature view 'driver_stats': "
        in error.message
    )
    assert "is outside the data roots" in error.message


def test_materialize_then_serve_in_one_workflow(catalog: Catalog, installation: tuple[Any, Path]) -> None:
    repo = make_repo(installation[1] / "features")
    result = _run(SERVING, repo, installation, catalog)
    assert result.outputs["loaded"] == ["driver_stats"]
    assert result.outputs["table"].to_pylist() == [
        {"driver_id": 2, "event_timestamp": hour(3), "conv_rate": 0.3, "trips": 7},
        {"driver_id": 1, "event_timestamp": hour(5), "conv_rate": 0.9, "trips": 30},
    ]
