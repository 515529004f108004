"""The check that a model version loads before a deploy replaces the served one (on Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cluster.ray_runtime import RayConnection
from serve.models import manager
from tests.serve.models.test_scaling import spec


def test_a_load_that_failed_is_not_cancelled_and_one_still_running_is(
    ray_session: RayConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Force-cancelling the check's task after it had failed made Ray 2.60's core worker abort the whole API
    # process ("Tried to complete task that was not pending") at every redeploy of a version that cannot load.
    import ray

    cancels: list[dict[str, Any]] = []
    real_cancel = ray.cancel

    def recording_cancel(ref: Any, **options: Any) -> None:
        cancels.append(options)
        real_cancel(ref, **options)

    monkeypatch.setattr(ray, "cancel", recording_cancel)
    missing = spec(name="absent", tracking_uri=f"file://{tmp_path}/mlruns")
    with pytest.raises(manager.DeployFailed, match=r"version 1 cannot be served.*version 7 is still served"):
        manager._check_loads(missing, {"version": "7"}, 120)
    assert cancels == []
    with pytest.raises(manager.DeployFailed, match="GetTimeoutError"):
        manager._check_loads(missing, {"version": "7"}, 0.001)  # still starting: killed
    assert cancels == [{"force": True}]
