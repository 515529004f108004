"""Plugins in their own Ray runtime environments, on the session Ray (slow: each environment is built once).

Two plugins depending on different versions of one library (local wheels) see their own version; two
versions of one plugin run side by side from one catalog; a plugin whose module fails to import is reported
by name without stopping the others. Nodes run the way the engine runs them: `definition.invoke(...)` inside a
Ray task whose `runtime_env` option is the definition's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from nodes import Catalog, NodeDefinition
from nodes.plugins import PluginImportError, open_plugin_dir
from nodes.plugins.loader import LoadReport, load_plugins
from tests.nodes.plugins.fixtures import build_wheel, write_plugin

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SEES = """
import tinylib
from nodes import node

@node
def seen_version(label: str) -> str:
    return f"{label}:{tinylib.VERSION}"
"""

SCORE = """
import os
from nodes import node

@node
def score(x: float) -> dict[str, float | str]:
    return {"value": x * FACTOR, "mode": os.environ.get("ACME_MODE", "")}

FACTOR = %s
"""


def _invoke(
    definition: NodeDefinition, inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    return definition.invoke(inputs, params)


def run_on_ray(definition: Any, inputs: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> Any:
    import ray

    task: Any = ray.remote(_invoke)
    return ray.get(
        task.options(**definition.ray_options()).remote(definition, dict(inputs), dict(params or {}))
    )


@pytest.fixture(scope="module")
def loaded(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, LoadReport]:
    tmp = tmp_path_factory.mktemp("plugins")
    one = build_wheel(tmp / "wheels1", "tinylib", "1.0.0", {"tinylib/__init__.py": "VERSION = '1.0.0'\n"})
    two = build_wheel(tmp / "wheels2", "tinylib", "2.0.0", {"tinylib/__init__.py": "VERSION = '2.0.0'\n"})
    paths = [
        write_plugin(tmp, "alpha", "1.0.0", SEES, wheels={"wheels/tinylib-1.0.0-py3-none-any.whl": one}),
        write_plugin(tmp, "beta", "1.0.0", SEES, wheels={"wheels/tinylib-2.0.0-py3-none-any.whl": two}),
        write_plugin(tmp, "acme", "1.0.0", SCORE % 1, package="acme_score", env={"ACME_MODE": "one"}),
        write_plugin(tmp, "acme", "2.0.0", SCORE % 2, package="acme_score", env={"ACME_MODE": "two"}),
        write_plugin(tmp, "broken", "1.0.0", "import no_such_library_anywhere\n"),
    ]
    catalog = Catalog.builtin()
    report = load_plugins([open_plugin_dir(p) for p in paths], catalog, timeout_s=240)
    return catalog, report


def test_each_plugin_sees_its_own_version_of_a_shared_library(loaded: tuple[Catalog, LoadReport]) -> None:
    catalog, _ = loaded
    assert run_on_ray(catalog.get("alpha/seen_version@1"), {"label": "a"}) == {"out": "a:1.0.0"}
    assert run_on_ray(catalog.get("beta/seen_version@1"), {"label": "b"}) == {"out": "b:2.0.0"}


def test_two_versions_of_one_plugin_run_side_by_side(loaded: tuple[Catalog, LoadReport]) -> None:
    catalog, _ = loaded
    v1, v2 = catalog.get("acme/score@1"), catalog.get("acme/score@2")
    assert (v1.spec.version, v2.spec.version) == ("1.0.0", "2.0.0")
    assert run_on_ray(v1, {"x": 3.0}) == {"out": {"value": 3.0, "mode": "one"}}
    assert run_on_ray(v2, {"x": 3.0}) == {"out": {"value": 6.0, "mode": "two"}}
    assert catalog.get("acme/score") is v2  # no major given: the highest


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(
    loaded: tuple[Catalog, LoadReport],
) -> None:
    catalog, report = loaded
    assert sorted(report.loaded) == ["acme@1.0.0", "acme@2.0.0", "alpha@1.0.0", "beta@1.0.0"]
    error = report.failed["broken@1.0.0"]
    assert isinstance(error, PluginImportError)
    message = str(error)
    assert "plugin broken@1.0.0" in message and "'broken.nodes'" in message
    assert "No module named 'no_such_library_anywhere'" in message
    assert not catalog.find(plugin="broken")


def test_plugin_nodes_are_tested_in_their_environment_with_type_checks(
    loaded: tuple[Catalog, LoadReport], tmp_path: Path
) -> None:
    from nodes.errors import NodeInputError
    from nodes.plugins.scaffold import new_plugin
    from nodes.plugins.testing import load_plugin, run_plugin_node

    catalog, _ = loaded
    with pytest.raises(NodeInputError, match="x"):
        run_plugin_node(catalog.get("acme/score@1"), {"x": "three"})
    definitions = load_plugin(new_plugin("hello", tmp_path))
    assert run_plugin_node(definitions["hello/greet@0"], {"name": "Ada"}).value == "Hello, Ada!"


def test_install_and_remove_while_running_keep_earlier_catalogs_working(
    ray_session: Any, tmp_path: Path
) -> None:
    import shutil

    from nodes.errors import UnknownNodeTypeError
    from nodes.plugins.home import PluginHome
    from nodes.plugins.live import LivePlugins

    live = LivePlugins(PluginHome(tmp_path / "home"))
    src = tmp_path / "src"
    for version, factor in (("1.0.0", 1), ("2.0.0", 2)):
        live.install(write_plugin(src, "acme", version, SCORE % factor, package="acme_score"))
    before = live.catalog()
    v1 = before.get("acme/score@1")
    assert live.remove("acme", "1.0.0") == ["acme@1.0.0"]
    shutil.rmtree(src / "acme-1.0.0")  # not even the source is left on disk
    after = live.catalog()
    with pytest.raises(UnknownNodeTypeError, match=r"acme/score@1.*acme/score@2 \(version 2.0.0\)"):
        after.get("acme/score@1")
    assert before.get("acme/score@1") is v1  # a workflow compiled before the remove still resolves it ...
    assert run_on_ray(v1, {"x": 5.0}) == {
        "out": {"value": 5.0, "mode": ""}
    }  # ... and its run finishes with it
    broken = write_plugin(src, "broken", "1.0.0", "import no_such_library_anywhere\n")
    with pytest.raises(PluginImportError, match=r"broken@1\.0\.0"):
        live.install(broken)
    assert [p.ref for p in live.home.installed()] == ["acme@2.0.0"]  # a plugin that cannot load is not kept


def test_a_requirement_that_does_not_install_is_reported_for_that_plugin(
    ray_session: Any, tmp_path: Path
) -> None:
    from nodes.plugins import PluginEnvironmentError

    corrupt = tmp_path / "corrupt" / "badlib-1.0.0-py3-none-any.whl"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"this is not a zip file")
    bad = write_plugin(tmp_path, "badreq", "1.0.0", SEES, wheels={f"wheels/{corrupt.name}": corrupt})
    good = write_plugin(tmp_path, "fine", "1.0.0", SCORE % 3, package="fine_score")
    report = load_plugins([open_plugin_dir(bad), open_plugin_dir(good)], timeout_s=240)
    assert sorted(report.loaded) == ["fine@1.0.0"]
    error = report.failed["badreq@1.0.0"]
    assert isinstance(error, PluginEnvironmentError)
    assert "plugin badreq@1.0.0" in str(error) and "runtime environment could not be built" in str(error)
