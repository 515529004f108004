"""Results, the cache's disk level, plugin indexes and exports in an S3-compatible object store (issue 19).

The store is a real S3 server on loopback (moto's server mode), reached through pyarrow's filesystem layer as
an installation reaches AWS S3 or MinIO: by the `RAYWEAVE_*_URI` and `RAYWEAVE_S3_*` settings.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cluster.settings import Settings
from engine.cache.result_cache import ResultCache
from engine.durable import DurableRunner
from engine.durable.results import ResultStore, result_store_for
from engine.secrets.atrest import DIR_MARKER, MAGIC
from engine.store import open_store
from engine.workflow import Workflow
from nodes.objectstore import ObjectStoreError
from nodes.states import NodeStatus
from serve.cli import build_app
from tests.engine.secrets import flows
from tests.engine.store.conformance.populate import populate
from tests.s3 import BUCKET, KEY_ID, SECRET, S3Server, moto_s3


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 (a free port) with one bucket, for this module."""
    with moto_s3() as server:
        yield server


def _settings(tmp_path: Path, s3: S3Server, **changes: Any) -> Settings:
    prefix = f"s3://{BUCKET}/{tmp_path.name}"
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "results_uri": f"{prefix}/results",
        "cache_uri": f"{prefix}/cache",
        "s3_endpoint_url": s3.endpoint,
        "s3_access_key_id": KEY_ID,
        "s3_secret_access_key": SECRET,
        "s3_connect_timeout_s": 2.0,
        "s3_request_timeout_s": 10.0,
    }
    return Settings(**{**values, **changes})


def _workflow() -> Workflow:
    wf = Workflow("stored-in-s3")
    table = wf.add("table", flows.confidential_table, n=wf.input("n", "Int"))
    wf.output("table", table)
    wf.output("summary", wf.add("summary", flows.describe, table=table))
    return wf


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("encrypted", [False, True], ids=["clear", "encrypted"])
def test_a_durable_run_keeps_results_and_cache_in_s3(tmp_path: Path, s3: S3Server, encrypted: bool) -> None:
    settings = _settings(tmp_path, s3, encrypt_at_rest=encrypted)
    with open_store(settings.resolved_database_url) as store:
        first = DurableRunner(settings, store=store, cache=True).run(_workflow(), {"n": 4}, timeout=120)
        assert first.ok, first.error
        assert first.outputs["summary"] == f"{flows.MARKER}: 4 rows"
        # The Ray tasks wrote the results into the bucket (nothing under the local home) ...
        results = s3.keys(f"{tmp_path.name}/results/{first.run_id}/")
        assert {k.rsplit("/", 2)[1] for k in results if k.endswith("/meta.json")} == {"table", "summary"}
        assert not (settings.home / "results").exists()
        data = [k for k in results if k.endswith((".arrow", ".pkl")) and "/_blobs/" not in k]
        cached = [k for k in s3.keys(f"{tmp_path.name}/cache/") if k.endswith((".arrow", ".pkl"))]
        assert data and cached and not [k for k in results if "/." in k], "no temporary object is left"
        for key in data + cached:
            body = s3.read(key)
            assert body.startswith(MAGIC) == encrypted and (flows.MARKER.encode() in body) != encrypted
        if not encrypted:
            [arrow] = [k for k in data if k.endswith(".arrow")]
            assert pa.ipc.open_file(pa.py_buffer(s3.read(arrow))).read_all().num_rows == 4
        assert (f"{tmp_path.name}/cache/{DIR_MARKER}" in s3.keys(f"{tmp_path.name}/cache/")) == encrypted
        # ... which another process reads back from the bucket, and a new runner is answered by the S3 cache.
        reader = result_store_for(settings)
        assert reader.get(first.run_id, "table")["out"].column("id").to_pylist() == [0, 1, 2, 3]
        again = DurableRunner(settings, store=store, cache=True).run(_workflow(), {"n": 4}, timeout=120)
        assert again.ok and again.outputs["summary"] == first.outputs["summary"]
        assert {r.status for r in again.nodes.values()} == {NodeStatus.CACHED}
    cache = ResultCache.for_settings(settings)
    stats = cache.stats()["disk"]
    assert stats.entries == 2 and stats.bytes > 0
    assert cache.purge()["disk"] == 2 and cache.stats()["disk"].entries == 0


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args), env={**env, "RAYWEAVE_PLUGIN_INDEX": ""})
    return result.exit_code, result.output


def test_plugins_publish_to_and_install_from_an_index_in_s3(tmp_path: Path, s3: S3Server) -> None:
    env = {**s3.env(), "RAYWEAVE_HOME": str(tmp_path / "home")}
    index = f"s3://{BUCKET}/{tmp_path.name}/plugins"
    assert _cli(env, "plugins", "new", "alpha", "--dir", str(tmp_path / "src"))[0] == 0
    code, out = _cli(env, "plugins", "publish", str(tmp_path / "src" / "alpha"), "--index", index, "--json")
    assert code == 0, out
    assert sorted(s3.keys(f"{tmp_path.name}/plugins/")) == [
        f"{tmp_path.name}/plugins/alpha-0.1.0.tar.gz",
        f"{tmp_path.name}/plugins/index.json",
    ]
    code, out = _cli(env, "plugins", "install", "alpha==0.1.0", "--index", index, "--json")
    assert code == 0 and json.loads(out) == {"installed": ["alpha@0.1.0"]}, out
    code, out = _cli(env, "plugins", "list", "--json")
    assert code == 0 and "alpha" in out
    code, out = _cli(env, "plugins", "search", "--index", f"s3://no-such-bucket/{tmp_path.name}")
    assert code == 1 and "RAYWEAVE_PLUGIN_INDEX s3://no-such-bucket" in out and "Traceback" not in out


def test_exports_are_written_to_s3_whole(tmp_path: Path, s3: S3Server) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with open_store(url) as store:
        populate(store, runs=2)
    env = {**s3.env(), "RAYWEAVE_HOME": str(tmp_path / "home")}
    target = f"s3://{BUCKET}/{tmp_path.name}/exports/all.ndjson"
    assert _cli(env, "export", "--format", "ndjson", "--out", target, "--url", url)[0] == 0
    assert (
        _cli(env, "export", "--format", "ndjson", "--out", str(tmp_path / "all.ndjson"), "--url", url)[0] == 0
    )
    lines = s3.read(f"{tmp_path.name}/exports/all.ndjson").splitlines()
    local = (tmp_path / "all.ndjson").read_bytes().splitlines()
    assert (
        len(lines) == len(local) > 10 and json.loads(lines[-1])["counts"] == json.loads(local[-1])["counts"]
    )
    archive = f"s3://{BUCKET}/{tmp_path.name}/exports/archive.json"
    assert _cli(env, "export", "--all", "--out", archive, "--url", url)[0] == 0
    assert json.loads(s3.read(f"{tmp_path.name}/exports/archive.json"))["format"] == "rayweave.archive/1"
    assert sorted(s3.keys(f"{tmp_path.name}/exports/")) == [
        f"{tmp_path.name}/exports/all.ndjson",
        f"{tmp_path.name}/exports/archive.json",
    ], "no temporary object is left"
    code, out = _cli({**env, "RAYWEAVE_CACHE_URI": "s3://no-such-bucket/cache"}, "cache", "stats")
    assert code == 2 and "RAYWEAVE_CACHE_URI s3://no-such-bucket/cache: the bucket" in out
    assert "Traceback" not in out
    code, out = _cli(
        env, "export", "--format", "ndjson", "--out", "s3://no-such-bucket/all.ndjson", "--url", url
    )
    assert code == 2 and "--out s3://no-such-bucket" in out and "does not exist" in out
    assert "Traceback" not in out


def test_bad_locations_fail_fast_naming_the_setting(tmp_path: Path, s3: S3Server) -> None:
    missing = _settings(tmp_path, s3, results_uri="s3://no-such-bucket/results")
    with pytest.raises(
        ObjectStoreError, match="RAYWEAVE_RESULTS_URI s3://no-such-bucket/results: the bucket"
    ):
        DurableRunner(missing, executor="local")
    with pytest.raises(ObjectStoreError, match="RAYWEAVE_CACHE_URI s3://no-such-bucket/c: the bucket"):
        ResultCache.for_settings(_settings(tmp_path, s3, cache_uri="s3://no-such-bucket/c"))
    with pytest.raises(
        ObjectStoreError, match="RAYWEAVE_RESULTS_URI zz://x/y: 'zz://x/y' is not a directory"
    ):
        result_store_for(_settings(tmp_path, s3, results_uri="zz://x/y")).check()
    with pytest.raises(ObjectStoreError, match="names no bucket"):
        result_store_for(_settings(tmp_path, s3, results_uri="s3:///results")).check()
    started = time.monotonic()
    closed = _settings(tmp_path, s3, s3_endpoint_url="http://127.0.0.1:9", s3_connect_timeout_s=1.0)
    with pytest.raises(
        ObjectStoreError, match=r"cannot reach the store at http://127\.0\.0\.1:9; check RAYWEAVE_S3"
    ):
        result_store_for(closed).check()
    assert time.monotonic() - started < 5, "an endpoint that does not answer fails within the timeouts"
    with pytest.raises(ValueError, match="s3_endpoint_url"):
        _settings(tmp_path, s3, s3_endpoint_url="minio:9000")


def test_rayweave_run_and_serve_report_a_missing_bucket(tmp_path: Path, s3: S3Server) -> None:
    env = {
        **s3.env(),
        "RAYWEAVE_HOME": str(tmp_path / "home"),
        "RAYWEAVE_RESULTS_URI": "s3://no-such-bucket/r",
    }
    example = Path(__file__).resolve().parents[3] / "examples" / "fan_out_join.json"
    code, out = _cli(env, "run", str(example), "--local")
    assert code == 1 and "RAYWEAVE_RESULTS_URI s3://no-such-bucket/r: the bucket" in out
    assert "Traceback" not in out
    served = {**env, "RAYWEAVE_HOME": str(tmp_path / "served"), "RAYWEAVE_RESULTS_URI": ""}
    code, out = _cli({**served, "RAYWEAVE_CACHE_URI": "s3://no-such-bucket/c"}, "serve")
    assert code == 2 and "RAYWEAVE_CACHE_URI s3://no-such-bucket/c: the bucket" in out
    assert "Traceback" not in out and not (tmp_path / "served").exists(), "nothing started"


def test_wrong_credentials_are_named(tmp_path: Path, s3: S3Server) -> None:
    from moto import settings as moto_settings

    wrong = result_store_for(_settings(tmp_path, s3, s3_access_key_id="not-a-key"))
    before = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # the server now checks every request's signature
    try:
        with pytest.raises(
            ObjectStoreError, match="refused the credentials; check RAYWEAVE_S3_ACCESS_KEY_ID"
        ):
            wrong.check()
        with pytest.raises(OSError, match=r"RAYWEAVE_RESULTS_URI .* refused the credentials"):
            wrong.put("r", "n", {"out": 1})
    finally:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = before


def test_a_result_store_travels_as_its_description(tmp_path: Path, s3: S3Server) -> None:
    import pickle

    results = result_store_for(_settings(tmp_path, s3))
    results.put("r", "n", {"out": pa.table({"x": [1, 2]}), "n": 2})
    copy = pickle.loads(pickle.dumps(results))
    assert isinstance(copy, ResultStore) and copy.get("r", "n", ("n",)) == {"n": 2}
    assert b"S3FileSystem" not in pickle.dumps(results) and SECRET not in repr(results.where)
    assert results.location("r", "n") == f"s3://{BUCKET}/{tmp_path.name}/results/r/n"
    results.delete_run("r")
    assert not results.exists("r", "n") and s3.keys(f"{tmp_path.name}/results/r/") == []


def test_the_guide_lists_the_settings_there_are() -> None:
    guide = (Path(__file__).resolve().parents[3] / "docs" / "guides" / "object-storage.md").read_text()
    named = set(re.findall(r"`RAYWEAVE_([A-Z0-9_]+)`", guide))
    assert {"RESULTS_URI", "CACHE_URI", "PLUGIN_INDEX", "S3_ENDPOINT_URL", "S3_SECRET_ACCESS_KEY"} <= named
    fields = Settings.model_fields
    assert not [n for n in named if n.lower() not in fields and n != "ENCRYPT_AT_REST"], named
    assert "ENCRYPT_AT_REST".lower() in fields
    assert (fields["s3_connect_timeout_s"].default, fields["s3_request_timeout_s"].default) == (5.0, 30.0)
    assert "| `RAYWEAVE_S3_CONNECT_TIMEOUT_S` | Seconds to wait for a connection | 5 |" in guide
