"""Requirements the base environment satisfies already stay out of a plugin's `pip` (no virtualenv to build)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from nodes.plugins import open_plugin_dir
from nodes.plugins.runtime import describe_runtime_env, satisfied_by_base
from tests.nodes.plugins.fixtures import write_plugin

ML_PLUGIN = Path(__file__).resolve().parents[3] / "nodes" / "firstparty" / "ml"
PACKAGING = importlib.metadata.version("packaging")


def test_installed_versions_that_match_are_reused_and_the_others_go_to_pip(tmp_path: Path) -> None:
    requirements = (
        f"packaging=={PACKAGING}",  # installed at this version: reused
        "packaging>=1",  # any installed version matches: reused
        "pyarrow<1",  # installed, another version: pip
        "rayweave-no-such-distribution==1.0",  # not installed: pip
        "packaging[extra]>=1",  # extras are not checked: pip
        "nothing-here; python_version < '3'",  # not for this interpreter: nothing to install
    )
    plugin = open_plugin_dir(write_plugin(tmp_path, "reuse", "1.0.0", "", requirements=requirements))
    env = describe_runtime_env(plugin)
    assert env["pip"] == {
        "packages": ["pyarrow<1", "rayweave-no-such-distribution==1.0", "packaging[extra]>=1"],
        "pip_check": False,
    }
    assert describe_runtime_env(plugin, reuse_installed=False)["pip"]["packages"] == list(requirements)


def test_all_satisfied_means_no_pip_field_so_no_virtualenv(tmp_path: Path) -> None:
    plugin = open_plugin_dir(write_plugin(tmp_path, "same", "1.0.0", "", requirements=("packaging>=1",)))
    assert "pip" not in describe_runtime_env(plugin)


def test_local_version_labels_match_a_plain_pin() -> None:
    installed = importlib.metadata.version("torch")  # the CPU build: 2.13.0+cpu
    plain = installed.split("+", 1)[0]
    assert satisfied_by_base(f"torch=={plain}")
    assert not satisfied_by_base("torch==0.0.1")
    assert not satisfied_by_base("not a requirement ((")


def test_the_first_party_ml_plugin_needs_no_virtualenv_here() -> None:
    env = describe_runtime_env(open_plugin_dir(ML_PLUGIN))
    assert "pip" not in env, env.get("pip")
    assert env["env_vars"]["RAYWEAVE_PLUGIN"] == "ml@1.0.0"
