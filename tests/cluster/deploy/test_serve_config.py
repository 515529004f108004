"""The RayService's Serve config is one Ray Serve accepts, and its import path builds rayweave's API.

Ray Serve's own config schema (`ServeDeploySchema`, what the dashboard checks a config against before KubeRay's
deploy succeeds) validates the rendered `serveConfigV2`; the import path is resolved and called the way Serve
calls an application builder, with the config's `args`. Nothing here starts Ray: binding an application does
not need a cluster.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from serve.deployment import DEPLOYMENT_NAME
from serve.kuberay import IMPORT_PATH, ApiArgs
from tests.cluster.deploy.chart import VARIANTS, by_kind, render


def _serve_config(variant: str) -> dict[str, Any]:
    service = by_kind(render(variant))["RayService"]
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert isinstance(config, dict)
    return config


def _build(import_path: str, args: dict[str, Any]) -> Any:
    """What Serve does with an application's import_path and args (ray.serve's own helpers)."""
    from ray._common.utils import import_attr
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    return call_user_app_builder_with_args_if_necessary(import_attr(import_path), args)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_serve_config_passes_ray_serves_schema(variant: str) -> None:
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(_serve_config(variant))
    (app,) = config.applications
    assert (app.name, app.route_prefix, app.import_path) == ("rayweave", "/", IMPORT_PATH)
    values = VARIANTS[variant]["api"]
    assert app.args["replicas"] == values["replicas"]
    assert app.args.get("max_active_runs", 0) == values["maxActiveRuns"]
    if values["autoscaling"]["enabled"]:
        (deployment,) = app.deployments
        assert deployment.name == DEPLOYMENT_NAME  # an override of another name fails the deploy
        assert deployment.num_replicas == "auto"
        assert deployment.autoscaling_config == {
            "min_replicas": values["autoscaling"]["minReplicas"],
            "max_replicas": values["autoscaling"]["maxReplicas"],
            "target_ongoing_requests": values["autoscaling"]["targetOngoingRequests"],
        }
    else:
        assert not app.deployments


def test_import_path_builds_the_api_with_the_configs_args() -> None:
    (app,) = _serve_config("api autoscaling and a quota")["applications"]
    application = _build(app["import_path"], app["args"])
    deployment = application._bound_deployment
    assert deployment.name == DEPLOYMENT_NAME
    assert deployment.num_replicas == VARIANTS["api autoscaling and a quota"]["api"]["replicas"]
    assert deployment.ray_actor_options == {"num_cpus": 0}  # as `rayweave serve` deploys it


def test_every_arg_name_is_one_the_builder_knows() -> None:
    for variant in VARIANTS:
        (app,) = _serve_config(variant)["applications"]
        assert set(app["args"]) <= set(ApiArgs.model_fields), variant


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"replicas": 0}, "args.replicas: Input should be greater than or equal to 1"),
        ({"replica": 2}, "args.replica: Extra inputs are not permitted"),
        ({"recovery_stale_after_s": 1}, "args.recovery_stale_after_s"),
    ],
)
def test_bad_args_name_the_field(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(IMPORT_PATH, args)
