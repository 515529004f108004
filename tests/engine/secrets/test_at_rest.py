"""Encryption at rest of stored results and cache entries (issue 18), on Ray through durable runs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from cluster.settings import Settings
from engine.durable import DurableRunner
from engine.durable.results import ResultStore, default_results_uri
from engine.secrets.atrest import DIR_MARKER, MAGIC, cipher_for
from engine.secrets.errors import SecretDecryptionError
from engine.store import Store, open_store
from engine.workflow import Workflow
from nodes.states import NodeStatus
from tests.engine.secrets import flows

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


def _workflow() -> Workflow:
    wf = Workflow("confidential")
    n = wf.input("n", "Int")
    table = wf.add("table", flows.confidential_table, n=n)
    wf.output("table", table)
    wf.output("summary", wf.add("summary", flows.describe, table=table))
    return wf


def _stored_files(root: Path) -> list[Path]:
    return [
        p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != "meta.json"
    ]


@pytest.fixture
def store(settings: Settings) -> Store:
    return open_store(settings.resolved_database_url)


def test_results_and_cache_entries_are_encrypted_and_read_back(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", encrypt_at_rest=True)
    with open_store(settings.resolved_database_url) as store:
        runner = DurableRunner(settings, store=store, cache=True)
        first = runner.run(_workflow(), {"n": 5}, timeout=120)
        assert first.ok, first.error
        assert first.outputs["summary"] == f"{flows.MARKER}: 5 rows"
        assert first.outputs["table"].column("note").to_pylist()[0] == f"{flows.MARKER}-0"
        results = settings.home / "results"
        cache = settings.resolved_cache_dir
        assert (cache / DIR_MARKER).is_file()
        written = _stored_files(results / first.run_id) + _stored_files(cache)
        assert any(p.suffix == ".arrow" for p in written) and any(p.suffix == ".pkl" for p in written)
        for path in written:
            data = path.read_bytes()
            assert data.startswith(MAGIC), f"{path} is not encrypted"
            assert flows.MARKER.encode() not in data
        # A new runner (another process would do the same) reads the results and answers from the cache.
        again = DurableRunner(settings, store=store, cache=True).run(_workflow(), {"n": 5}, timeout=120)
        assert again.ok and again.outputs["summary"] == first.outputs["summary"]
        assert {r.status for r in again.nodes.values()} == {NodeStatus.CACHED}
        # A file altered on disk is refused, not misread.
        for victim in _stored_files(results / first.run_id / "summary"):
            data = bytearray(victim.read_bytes())
            data[-1] ^= 0x01
            victim.write_bytes(bytes(data))
        reader = ResultStore(default_results_uri(settings), cipher_for(settings))
        with pytest.raises(SecretDecryptionError, match="failed authentication"):
            reader.get(first.run_id, "summary")
        # An installation that does not encrypt says what to set instead of failing obscurely.
        clear = ResultStore(default_results_uri(settings))
        with pytest.raises(SecretDecryptionError, match="RAYWEAVE_ENCRYPT_AT_REST=true"):
            clear.get(first.run_id, "table")
        assert isinstance(reader.get(first.run_id, "table")["out"], pa.Table)


def test_without_encryption_files_stay_clear_and_the_marker_goes(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with open_store(settings.resolved_database_url) as store:
        result = DurableRunner(settings, store=store, cache=True).run(_workflow(), {"n": 2}, timeout=120)
        assert result.ok
    assert not (settings.resolved_cache_dir / DIR_MARKER).exists()
    assert any(flows.MARKER.encode() in p.read_bytes() for p in _stored_files(settings.home / "results"))
