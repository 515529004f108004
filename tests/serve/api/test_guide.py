"""Every Python example of docs/guides/http-api.md runs against a served app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.serve.api.conftest import Api

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "http-api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_guide_has_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_guide_python_block_runs(
    block: str, api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAYWEAVE_URL", api.url)
    monkeypatch.setenv("RAYWEAVE_API_KEY", api.admin_key)
    monkeypatch.chdir(tmp_path)
    if "audit.ndjson" in block:
        # The guide's command before this block: `rayweave audit export --out audit.ndjson` on the server's home.
        from typer.testing import CliRunner

        from serve.cli import build_app

        monkeypatch.setenv("RAYWEAVE_HOME", str(api.home))
        with api.client() as client:  # something audited to export (a denied request is audited too)
            assert client.get("/v1/audit", headers={"Authorization": "Bearer rw_x_nope"}).status_code == 401
            assert client.post("/v1/workflows/validate", json={"workflow": {}}).status_code in (200, 422)
        assert api.store.audit.verify().checked > 0
        exported = CliRunner().invoke(build_app(), ["audit", "export", "--out", "audit.ndjson"])
        assert exported.exit_code == 0, exported.output
    exec(compile(block, str(GUIDE), "exec"), {"__name__": "guide_example"})
