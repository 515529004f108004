"""`LivePlugins` notices changes other processes make to the plugin records, and the catalog says plainly when
no version of a plugin's node is installed. Neither needs Ray: records without files load nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodes import Catalog
from nodes.errors import UnknownNodeTypeError
from nodes.plugins.home import PluginHome
from nodes.plugins.live import LivePlugins, records_stamp


def test_a_change_of_the_records_by_another_process_triggers_a_refresh(tmp_path: Path) -> None:
    live = LivePlugins(PluginHome(tmp_path), check_every_s=0.0)
    live.refresh()
    assert live.refresh_if_changed() is False
    # Another replica (here: a second home on the same records) installs something.
    PluginHome(tmp_path).records.add("acme", "1.0.0", {"name": "acme"})
    assert live.refresh_if_changed() is True
    assert live.refresh_if_changed() is False
    PluginHome(tmp_path).records.remove("acme", "1.0.0")
    assert live.refresh_if_changed() is True


def test_checks_are_throttled_and_off_by_default(tmp_path: Path) -> None:
    throttled = LivePlugins(PluginHome(tmp_path), check_every_s=3600.0)
    throttled.refresh()
    never = LivePlugins(PluginHome(tmp_path))
    never.refresh()
    before = records_stamp(PluginHome(tmp_path))
    PluginHome(tmp_path).records.add("acme", "1.0.0", {"name": "acme"})
    assert records_stamp(PluginHome(tmp_path)) != before
    assert throttled.refresh_if_changed() is False
    assert never.refresh_if_changed() is False


def test_unknown_plugin_node_says_no_version_is_installed() -> None:
    with pytest.raises(UnknownNodeTypeError) as raised:
        Catalog.builtin().get("acme/score@1")
    message = str(raised.value)
    assert "no version of acme/score is installed; installed plugins: none" in message
    assert "rayweave plugins install acme" in message


def test_unknown_builtin_node_still_suggests_close_matches() -> None:
    with pytest.raises(UnknownNodeTypeError) as raised:
        Catalog.builtin().get("builtin/column_mea@1")
    message = str(raised.value)
    assert "did you mean builtin/column_mean@1" in message and "no version" not in message
