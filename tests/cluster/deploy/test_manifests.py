"""The Helm chart and the kustomize tree render valid Kubernetes and KubeRay objects that fit rayweave.

No helm binary can be installed here, so the chart is rendered by `gotemplate.Renderer`, a renderer of exactly
the Go-template subset the chart uses (it refuses anything else). The kustomize tree is the chart's default
rendering and is rendered by the real `kubectl kustomize`; the two must agree. Kubernetes objects are checked
against the Kubernetes 1.37 schemas that the `kubernetes-validate` package ships (strict: unknown fields
fail); the KubeRay objects against `kuberay-v1.6.2.schema.json`, a transcription of KubeRay v1.6.2's API
reference, with their pod templates checked as Kubernetes `PodTemplate`s.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.cluster.deploy.chart import (
    CHART,
    KUSTOMIZE,
    RELEASE,
    VARIANTS,
    by_kind,
    default_values,
    render,
    values_with,
)
from tests.cluster.deploy.gotemplate import Renderer, TemplateError

KUBERAY_SCHEMA = Path(__file__).with_name("kuberay-v1.6.2.schema.json")
K8S_VERSION = "1.37.0"
#: The oldest Kubernetes the chart declares (Chart.yaml kubeVersion), checked for the default values.
K8S_OLDEST = "1.28.0"


# -- values and their schema ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def values_schema() -> dict[str, Any]:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    # Draft 7: the newest draft every Helm 3 release validates values with.
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_values_satisfy_the_chart_schema(values_schema: dict[str, Any], variant: str) -> None:
    jsonschema.validate(VARIANTS[variant], values_schema, cls=jsonschema.Draft7Validator)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"api__replicas": 0}, "replicas"),
        ({"database__secretName": ""}, "secretName"),
        ({"ingress__tlsSecretName": ""}, "tlsSecretName"),
        ({"image__pullPolicy": "Sometimes"}, "pullPolicy"),
        ({"workers__resources": {"requests": {"cpu": "four"}, "limits": {}}}, "cpu"),
        ({"autoscaler__upscalingMode": "Fast"}, "upscalingMode"),
        ({"api__autoscaling__minReplicas": 0}, "minReplicas"),
        ({"rayVersion": "latest"}, "rayVersion"),
        ({"api__replica": 2}, "replica"),
        ({"coordinators": 0}, "coordinators"),
        ({"coordinators": "two"}, "coordinators"),
    ],
)
def test_the_schema_refuses_bad_values(
    values_schema: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    errors = list(jsonschema.Draft7Validator(values_schema).iter_errors(values_with(**change)))
    assert errors, f"{change} passed the schema"
    assert any(field in list(e.absolute_path) or repr(field) in e.message for e in errors), errors


def test_every_value_the_templates_use_is_in_values_yaml() -> None:
    values = default_values()
    used = set()
    for template in (CHART / "templates").iterdir():
        used |= set(re.findall(r"\.Values((?:\.\w+)+)", template.read_text(encoding="utf-8")))
    assert used
    for ref in sorted(used):
        node: Any = values
        for part in ref.strip(".").split("."):
            assert isinstance(node, dict) and part in node, f".Values{ref} is not in values.yaml"
            node = node[part]


def test_the_renderer_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    shutil.copy(CHART / "Chart.yaml", chart / "Chart.yaml")
    (chart / "templates" / "a.yaml").write_text("{{ range .Values.x }}{{ end }}")
    with pytest.raises(TemplateError, match="'range' is outside the subset"):
        Renderer(chart, {"x": [1]}, RELEASE)
    (chart / "templates" / "a.yaml").write_text("name: {{ .Values.missing }}")
    with pytest.raises(TemplateError, match=r"\.Values\.missing is not in the values"):
        Renderer(chart, {}, RELEASE).render()
    (chart / "templates" / "a.yaml").write_text("name: {{ .Values.x | upper }}")
    with pytest.raises(TemplateError, match="'upper' is outside the subset"):
        Renderer(chart, {"x": "a"}, RELEASE).render()


# -- the kustomize tree is the chart's default rendering -----------------------------------------------------


def _kubectl_kustomize() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render the kustomize tree (it is on the project's machines)"
    done = subprocess.run([kubectl, "kustomize", str(KUSTOMIZE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_kustomize_renders_what_the_chart_renders_with_its_defaults() -> None:
    chart_objects = render("defaults")
    if os.environ.get("RAYWEAVE_WRITE_KUSTOMIZE") == "1":
        _write_kustomize()
    rendered = _kubectl_kustomize()

    def key(obj: dict[str, Any]) -> str:
        return f"{obj['kind']}/{obj['metadata']['name']}"

    assert sorted(map(key, rendered)) == sorted(map(key, chart_objects))
    by_key = {key(obj): obj for obj in rendered}
    for obj in chart_objects:
        assert by_key[key(obj)] == obj, (
            f"{key(obj)}: the kustomize tree and the chart disagree; rewrite the tree with "
            "RAYWEAVE_WRITE_KUSTOMIZE=1 .venv/bin/pytest tests/cluster/deploy"
        )


def _write_kustomize() -> None:
    header = (KUSTOMIZE / "rayservice.yaml").read_text(encoding="utf-8").split("apiVersion:")[0]
    for name, text in Renderer(CHART, default_values(), RELEASE).render().items():
        if text.strip():
            (KUSTOMIZE / name).write_text(header + text.strip() + "\n", encoding="utf-8")


# -- Kubernetes and KubeRay schemas ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kuberay() -> jsonschema.Draft202012Validator:
    schema = json.loads(KUBERAY_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _pod_templates(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    spec = obj["spec"]["rayClusterConfig"] if obj["kind"] == "RayService" else obj["spec"]
    found = [("head", spec["headGroupSpec"]["template"])]
    found += [(group["groupName"], group["template"]) for group in spec.get("workerGroupSpecs", [])]
    return found


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_objects_validate_against_their_schemas(
    variant: str, kuberay: jsonschema.Draft202012Validator
) -> None:
    objects = render(variant)
    assert objects
    versions = (K8S_OLDEST, K8S_VERSION) if variant == "defaults" else (K8S_VERSION,)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["kubeVersion"] == f">={K8S_OLDEST}-0"
    for obj in objects:
        where = f"{variant}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"] == "ray.io/v1":
            errors = sorted(kuberay.iter_errors(obj), key=lambda e: list(e.absolute_path))
            assert not errors, f"{where}: {[f'{list(e.absolute_path)}: {e.message}' for e in errors]}"
            for group, template in _pod_templates(obj):
                pod_template = {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {"name": f"{obj['metadata']['name']}-{group}"},
                    "template": template,
                }
                for version in versions:
                    kubernetes_validate.validate(pod_template, version, strict=True)
        else:
            for version in versions:
                kubernetes_validate.validate(obj, version, strict=True)


def test_the_validators_catch_mistakes(kuberay: jsonschema.Draft202012Validator) -> None:
    service = by_kind(render("defaults"))["RayService"]
    typo = copy.deepcopy(service)
    typo["spec"]["rayClusterConfig"]["enableInTreeAutoscalling"] = True
    assert any("enableInTreeAutoscalling" in e.message for e in kuberay.iter_errors(typo))
    wrong_mode = copy.deepcopy(service)
    wrong_mode["spec"]["rayClusterConfig"]["authOptions"]["mode"] = "password"
    assert list(kuberay.iter_errors(wrong_mode))
    template = copy.deepcopy(service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"])
    template["spec"]["containers"][0]["resources"]["limits"]["cpu"] = {"cores": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "x"}, "template": template},
            K8S_VERSION,
            strict=True,
        )


# -- what rayweave needs from the objects ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_ray_container_runs_the_image_with_the_database_secret(variant: str) -> None:
    values = VARIANTS[variant]
    for obj in render(variant):
        if obj["apiVersion"] != "ray.io/v1":
            continue
        spec = obj["spec"]["rayClusterConfig"] if obj["kind"] == "RayService" else obj["spec"]
        assert spec["authOptions"]["mode"] == "token"
        assert spec["authOptions"].get("secretName", "") == values["rayAuth"]["secretName"]
        assert spec["enableInTreeAutoscaling"] is values["autoscaler"]["enabled"]
        assert spec["rayVersion"] == values["rayVersion"]
        for group, template in _pod_templates(obj):
            ray_container = template["spec"]["containers"][0]  # KubeRay's Ray container is the first
            assert ray_container["image"] == f"{values['image']['repository']}:{values['image']['tag']}"
            assert ray_container["securityContext"]["runAsNonRoot"] is True
            env = {e["name"]: e for e in ray_container["env"]}
            assert env["RAYWEAVE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": values["database"]["secretName"],
                "key": values["database"]["secretKey"],
            }, f"{obj['metadata']['name']}/{group}"
            # Every process of the installation runs the same number of coordinators (ADR 025).
            assert env["RAYWEAVE_COORDINATORS"] == {
                "name": "RAYWEAVE_COORDINATORS",
                "value": str(values["coordinators"]),
            }
            for extra in values["extraEnv"]:
                assert env[extra["name"]] == extra


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_worker_groups_scale_within_their_bounds(variant: str) -> None:
    values = VARIANTS[variant]
    objects = by_kind(render(variant))
    groups = {"RayService": values["workers"], "RayCluster": values["batchCluster"]["workers"]}
    assert ("RayCluster" in objects) is values["batchCluster"]["enabled"]
    for kind, obj in objects.items():
        if kind not in groups:
            continue
        spec = obj["spec"]["rayClusterConfig"] if kind == "RayService" else obj["spec"]
        (group,) = spec["workerGroupSpecs"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], f"{kind}: {group}"
        assert (group["minReplicas"], group["maxReplicas"]) == (
            groups[kind]["minReplicas"],
            groups[kind]["maxReplicas"],
        )
        assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # runs go to the workers


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_ingress_serves_the_rayservice_over_tls(variant: str) -> None:
    values = VARIANTS[variant]
    objects = by_kind(render(variant))
    if not values["ingress"]["enabled"]:
        assert "Ingress" not in objects
        return
    ingress, service = objects["Ingress"], objects["RayService"]
    (tls,) = ingress["spec"]["tls"]
    assert tls == {"hosts": [values["ingress"]["host"]], "secretName": values["ingress"]["tlsSecretName"]}
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == values["ingress"]["host"]
    (path,) = rule["http"]["paths"]
    # KubeRay names the Serve service of a RayService {name}-serve-svc and gives it Serve's port, 8000.
    assert path["backend"]["service"] == {
        "name": f"{service['metadata']['name']}-serve-svc",
        "port": {"number": 8000},
    }
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert serve_config["http_options"]["port"] == 8000
