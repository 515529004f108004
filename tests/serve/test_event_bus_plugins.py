"""Plugin changes over the event bus: when one API replica removes (or installs) a plugin version, another
replica on the same records looks at them at once instead of within its check interval. Real NATS JetStream on
127.0.0.1:4222 with a subject prefix and stream of this test (deleted afterwards); no Ray (records without files
load nothing)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from engine.bus.nats import NatsBus
from nodes.plugins.home import PluginHome
from nodes.plugins.live import LivePlugins
from serve.bus import PLUGINS_TOPIC, RunNotices, follow_plugin_changes
from tests.nodes.plugins.fixtures import write_plugin


def test_a_remove_on_one_replica_is_seen_at_once_by_another(tmp_path: Path) -> None:
    url = f"nats://127.0.0.1:4222?prefix=rwtest_{uuid.uuid4().hex[:12]}"
    home = PluginHome(tmp_path)
    home.records.add("acme", "1.0.0", {"name": "acme"})
    # Two replicas that would look at the records only once an hour by themselves.
    first = LivePlugins(PluginHome(tmp_path), check_every_s=3600.0)
    second = LivePlugins(PluginHome(tmp_path), check_every_s=3600.0)
    first.refresh()
    second.refresh()
    # Its files arrive after the replicas loaded (nothing to load, so no Ray): the first replica can remove it.
    write_plugin(home.plugins_dir / "acme", "acme", "1.0.0", "", directory="1.0.0")
    notices = [RunNotices.open(url), RunNotices.open(url)]
    try:
        for replica in notices:
            assert isinstance(replica.bus, NatsBus) and replica.bus.wait_connected(5)
        follow_plugin_changes(notices[0], first)
        follow_plugin_changes(notices[1], second)
        assert second.refresh_if_changed() is False  # throttled: it would not look for an hour
        assert first.remove("acme") == ["acme@1.0.0"]
        # The notice makes it look, an hour early (it arrives within milliseconds; 5 s at most here).
        deadline = time.monotonic() + 5
        while not second.refresh_if_changed():
            assert time.monotonic() < deadline, f"no {PLUGINS_TOPIC} notice reached the second replica"
            time.sleep(0.01)
        assert "acme" not in {ref.split("@")[0] for ref in second.loaded}
        assert second.refresh_if_changed() is False  # and the throttle holds again afterwards
    finally:
        for replica in notices:
            replica.close()
        cleaner = NatsBus(url)
        if cleaner.wait_connected(5):
            cleaner.delete_stream()
        cleaner.close()
