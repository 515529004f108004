"""Plugin dependency resolution against the installed set (no Ray)."""

from __future__ import annotations

import pytest

from nodes.plugins import (
    CircularDependencyError,
    ConflictingDependencyError,
    MissingDependencyError,
    PluginManifest,
)
from nodes.plugins.resolve import dependents, resolve


def m(name: str, version: str, **deps: str) -> PluginManifest:
    return PluginManifest(
        name=name,
        version=version,
        modules=("x",),
        dependencies={k.replace("_", "-"): v for k, v in deps.items()},
    )


def test_picks_the_highest_installed_version_in_range_dependencies_first() -> None:
    base1, base2, base3 = m("base", "1.0.0"), m("base", "1.4.0"), m("base", "2.0.0")
    util = m("util", "1.0.0", base=">=1")
    app = m("app", "1.0.0", util=">=1", base="<2")
    resolution = resolve(app, [base1, base2, base3, util])
    assert resolution.refs == ["base@1.4.0", "util@1.0.0"]


def test_backtracks_when_the_highest_version_conflicts() -> None:
    old, new = m("lib", "1.0.0"), m("lib", "2.0.0")
    mid1 = m("mid", "1.0.0", lib="<2")
    mid2 = m("mid", "2.0.0", lib=">=3")  # the newest mid needs a lib that is not installed
    app = m("app", "1.0.0", mid=">=1")
    assert resolve(app, [old, new, mid1, mid2]).refs == ["lib@1.0.0", "mid@1.0.0"]


def test_missing_dependency_names_plugin_range_and_installed_versions() -> None:
    app = m("app", "1.0.0", base=">=2")
    with pytest.raises(MissingDependencyError) as info:
        resolve(app, [m("base", "1.0.0")])
    message = str(info.value)
    assert "app@1.0.0" in message and "base >=2" in message and "installed versions of base: 1.0.0" in message


def test_conflicting_ranges_are_rejected_naming_both_sides() -> None:
    base1, base2 = m("base", "1.0.0"), m("base", "2.0.0")
    left = m("left", "1.0.0", base="<2")
    right = m("right", "1.0.0", base=">=2")
    app = m("app", "1.0.0", left=">=1", right=">=1")
    with pytest.raises(ConflictingDependencyError) as info:
        resolve(app, [base1, base2, left, right])
    message = str(info.value)
    assert "base" in message and ("left@1.0.0" in message or "right@1.0.0" in message)
    assert "only one version of base" in message


def test_circular_dependencies_are_rejected_showing_the_cycle() -> None:
    a = m("a", "1.0.0", b=">=1")
    b = m("b", "1.0.0", c=">=1")
    c = m("c", "1.0.0", a=">=1")
    with pytest.raises(CircularDependencyError, match=r"a@1.0.0 -> b@1.0.0 -> c@1.0.0 -> a@1.0.0"):
        resolve(a, [a, b, c])


def test_dependents_lists_plugins_broken_by_a_removal_even_indirectly() -> None:
    base = m("base", "1.0.0")
    util = m("util", "1.0.0", base=">=1")
    app = m("app", "1.0.0", util=">=1")
    other = m("other", "1.0.0")
    assert dependents("base", [base, util, app, other]) == {}
    broken = dependents("base", [util, app, other])
    assert sorted(broken) == ["app@1.0.0", "util@1.0.0"]
    assert isinstance(broken["util@1.0.0"], MissingDependencyError)
