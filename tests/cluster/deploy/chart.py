"""The rayweave chart's paths, its default values, the value sets the tests render, and their rendering."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.deploy.gotemplate import Renderer

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "cluster" / "deploy" / "helm" / "rayweave"
KUSTOMIZE = ROOT / "cluster" / "deploy" / "kustomize"
RELEASE = "rayweave"


def default_values() -> dict[str, Any]:
    """A fresh copy of values.yaml."""
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert isinstance(values, dict)
    return values


def values_with(**changes: Any) -> dict[str, Any]:
    """The default values with nested keys changed, `__` between the levels (`api__replicas=3`)."""
    values = default_values()
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        target = values
        for part in path:
            target = target[part]
        target[last] = copy.deepcopy(value)
    return values


#: Values a user would set, beside the defaults: each set renders and validates.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": default_values(),
    "api autoscaling and a quota": values_with(
        api__autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 6, "targetOngoingRequests": 32},
        api__maxActiveRuns=5,
        coordinators=2,
    ),
    "shared ray token, extra env, no batch cluster, no ingress class": values_with(
        rayAuth={"secretName": "rayweave-ray-token"},
        extraEnv=[{"name": "RAYWEAVE_RESULTS_URI", "value": "s3://bucket/results"}],
        batchCluster__enabled=False,
        ingress__className="",
        ingress__annotations={},
    ),
    "no ingress, no autoscaler": values_with(ingress__enabled=False, autoscaler__enabled=False),
}


@functools.cache
def render(name: str) -> list[dict[str, Any]]:
    """The chart's objects for the value set `name` of VARIANTS (rendered once; callers never change them)."""
    return Renderer(CHART, VARIANTS[name], RELEASE).manifests()


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The objects by kind (the chart renders at most one of each)."""
    kinds = {obj["kind"]: obj for obj in objects}
    assert len(kinds) == len(objects)
    return kinds
