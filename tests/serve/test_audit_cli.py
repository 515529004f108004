"""`rayweave audit verify` and `rayweave audit export`, run through the real Typer app on a SQLite store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from engine.store import open_store
from engine.store.audit_chain import verify_lines
from serve.cli import build_app
from tests.engine.store import sql_support


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def _store_with_entries(tmp_path: Path, count: int = 4) -> tuple[str, list[int]]:
    url = f"sqlite:///{tmp_path / 'rayweave.db'}"
    store = open_store(url)
    ids = []
    for n in range(count):
        entry = store.audit.append(f"user{n}", "keys.create", resource_id=f"k{n}", details={"n": n})
        assert entry.id is not None
        ids.append(entry.id)
    store.close()
    return url, ids


def test_verify_passes_on_an_intact_log_and_names_an_edited_entry(tmp_path: Path) -> None:
    url, ids = _store_with_entries(tmp_path)
    code, out, _ = _run("audit", "verify", "--url", url)
    assert code == 0 and "ok: 4 audit entries verified" in out, out
    code, out, _ = _run("audit", "verify", "--url", url, "--json")
    assert code == 0 and json.loads(out)["ok"] is True

    store = open_store(url)
    sql_support.edit_audit_entry(store, ids[1], details={"n": 42})
    store.close()
    code, _, err = _run("audit", "verify", "--url", url)
    assert code == 1 and f"BROKEN at audit entry {ids[1]} (hash)" in err, err
    code, out, _ = _run("audit", "verify", "--url", url, "--json")
    result = json.loads(out)
    assert code == 1 and (result["broken_id"], result["problem"], result["checked"]) == (ids[1], "hash", 1)


def test_export_writes_ndjson_that_verifies_offline(tmp_path: Path) -> None:
    url, ids = _store_with_entries(tmp_path)
    target = tmp_path / "audit.ndjson"
    code, _, err = _run("audit", "export", "--url", url, "--out", str(target))
    assert code == 0 and "exported 4 audit entries" in err, err
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids
    with target.open(encoding="utf-8") as stream:
        result = verify_lines(stream)
    assert result.ok and result.checked == 4
    code, out, _ = _run("audit", "verify", "--url", url, "--json")
    assert json.loads(out)["head_hash"] == json.loads(lines[-1])["hash"] == result.head_hash

    code, out, _ = _run("audit", "export", "--url", url)  # to standard output
    assert code == 0 and out.splitlines() == lines


def test_export_since_starts_mid_chain(tmp_path: Path) -> None:
    url, _ = _store_with_entries(tmp_path, count=2)
    store = open_store(url)
    later = store.audit.append(
        "late", "keys.revoke", at=next(iter(store.audit.entries())).at + timedelta(days=2)
    )
    when = (later.at - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    store.close()
    code, out, _ = _run("audit", "export", "--url", url, "--since", when)
    assert code == 0, out
    lines = out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [later.id]
    assert verify_lines(lines, start_hash=None).ok
    code, _, err = _run("audit", "export", "--url", url, "--since", "yesterday")
    assert code == 2 and "--since" in err
