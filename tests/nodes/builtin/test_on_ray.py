"""Built-in nodes run as Ray tasks with their real options (tables and SKIP cross process boundaries)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from nodes import SKIP
from nodes.builtin import control, data
from nodes.builtin.errors import IntentionalFailure
from nodes.testing import run_node_on_ray

pytestmark = pytest.mark.ray


def test_sql_node_on_a_ray_worker(ray_session: object) -> None:
    table = pa.table({"k": ["a", "b", "a"], "v": [1, 2, 3]})
    out = run_node_on_ray(
        data.sql, {"a": table}, {"query": "SELECT k, sum(v) AS s FROM a GROUP BY k ORDER BY k"}
    )
    assert out["table"].to_pylist() == [{"k": "a", "s": 4}, {"k": "b", "s": 2}]


def test_skip_survives_the_trip_through_ray(ray_session: object) -> None:
    out = run_node_on_ray(control.if_else, {"cond": False, "value": 1})
    assert out["true"] is SKIP and out["false"] == 1


def test_fail_raises_its_own_error_type_from_a_worker(ray_session: object) -> None:
    with pytest.raises(IntentionalFailure, match="from ray"):
        run_node_on_ray(control.fail, {"value": 1}, {"message": "from ray"})
