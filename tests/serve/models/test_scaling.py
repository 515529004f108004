"""How a deploy request becomes Serve's scaling options (no Ray): fixed counts, autoscaling, scale to zero."""

from __future__ import annotations

import pytest

from serve.models import manager
from serve.models.replica import ModelSpec


def spec(**changes: object) -> ModelSpec:
    fields: dict[str, object] = {
        "name": "iris",
        "version": "1",
        "tracking_uri": "http://user:pw@mlflow:5000",
        "database_url": "postgresql://rw:secret@db/rayweave",
        "port": 8123,
    }
    fields.update(changes)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def test_fixed_and_autoscaled_options() -> None:
    assert manager.scaling_options(spec(replicas=3)) == {"num_replicas": 3}
    assert manager.scaling_options(spec(autoscale=(1, 4))) == {
        "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 4}
    }


def test_scale_to_zero_starts_with_one_replica_and_short_delays_shorten_the_window() -> None:
    config = manager.scaling_options(spec(autoscale=(0, 2), downscale_delay_s=5.0))["autoscaling_config"]
    assert config["min_replicas"] == 0 and config["initial_replicas"] == 1
    assert (config["downscale_delay_s"], config["look_back_period_s"], config["metrics_interval_s"]) == (
        5,
        5,
        2.5,
    )
    slow = manager.scaling_options(spec(autoscale=(0, 2), downscale_delay_s=900.0))["autoscaling_config"]
    assert (slow["look_back_period_s"], slow["metrics_interval_s"]) == (30.0, 10.0)


def test_the_public_spec_holds_no_urls_or_oidc() -> None:
    public = manager.public_spec(spec(autoscale=(0, 2), oidc=object()))
    assert public["autoscale"] == [0, 2] and public["port"] == 8123
    assert not {"tracking_uri", "database_url", "oidc"} & set(public)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (manager.DeployRequest("iris", "1", autoscale=(0, 0)), "autoscale"),
        (manager.DeployRequest("iris", "1", autoscale=(3, 2)), "autoscale"),
        (manager.DeployRequest("iris", "1", downscale_delay_s=5), "downscale_delay_s"),
        (manager.DeployRequest("iris", "1", autoscale=(0, 1), downscale_delay_s=-1), "downscale_delay_s"),
    ],
)
def test_bad_scaling_names_the_field(request_: manager.DeployRequest, field: str) -> None:
    with pytest.raises(manager.InvalidModelRequest) as caught:
        manager.check_request(request_)
    assert caught.value.field == field


def test_min_zero_is_accepted() -> None:
    manager.check_request(manager.DeployRequest("iris", "1", autoscale=(0, 1), downscale_delay_s=0))
