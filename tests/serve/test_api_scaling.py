"""The API deployment's scaling from settings (no Ray): a fixed count, or Serve's autoscaler down to zero."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cluster.settings import Settings
from serve.deployment import api_scaling


def test_fixed_replicas_without_the_setting(tmp_path: Path) -> None:
    assert api_scaling(Settings(home=tmp_path), 2) == {"num_replicas": 2}


def test_autoscale_to_zero_starts_one_replica(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api_autoscale=" 0, 3", api_downscale_delay_s=4)
    config = api_scaling(settings, 1)["autoscaling_config"]
    assert (config["min_replicas"], config["max_replicas"], config["initial_replicas"]) == (0, 3, 1)
    assert (config["downscale_delay_s"], config["look_back_period_s"], config["metrics_interval_s"]) == (
        4,
        4,
        2,
    )


@pytest.mark.parametrize("value", ["1", "2,1", "0,0", "a,b", "1,2,3"])
def test_a_bad_range_names_the_setting(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValidationError, match="RAYWEAVE_API_AUTOSCALE"):
        Settings(home=tmp_path, api_autoscale=value)


def test_replicas_per_host_caps_serve_placement(tmp_path: Path) -> None:
    """`rayweave serve --replicas-per-host 1`: Serve may place one API replica per Ray node (the multi-host
    suite relies on it to have a replica on a worker host); without it, Serve's choice."""
    from serve.deployment import api_application

    spread = api_application(Settings(home=tmp_path), num_replicas=2, replicas_per_host=1)._bound_deployment
    assert (spread.num_replicas, spread._replica_config.max_replicas_per_node) == (2, 1)
    free = api_application(Settings(home=tmp_path), num_replicas=2)._bound_deployment
    assert free._replica_config.max_replicas_per_node is None
