"""The files backend through the API (`RAYWEAVE_WORKFLOWS_DIR`): workflows are YAML files a git user edits by
hand; the API sees each edit as a new version, runs it, and names the file when an edit is not a workflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from cluster.settings import Settings
from serve.app import create_app
from serve.cli import build_app
from serve.config import ServeOptions
from tests.serve.api.conftest import add_doc, wait_for_status
from tests.serve.api.server import serving


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    """An API whose settings keep workflows in a folder (the store is the app's own, opened from them)."""
    home = tmp_path_factory.mktemp("files-home")
    settings = Settings(home=home, workflows_dir=home / "workflows")
    app = create_app(settings, options=ServeOptions(executor="local", print_admin_key=False))
    with serving(app) as url:
        key = (home / "admin.key").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            yield client, home / "workflows"


def test_a_hand_edit_of_the_file_is_the_next_version_and_runs(served: tuple[httpx.Client, Path]) -> None:
    client, folder = served
    created = client.post("/v1/workflows", json={"workflow": add_doc("add-two")})
    assert created.status_code == 201, created.text
    wf_id = created.json()["workflow_id"]
    assert wf_id == "add-two"  # the file is named after the workflow
    path = folder / "add-two.yaml"
    assert yaml.safe_load(path.read_text()) == add_doc("add-two")
    version_1 = yaml.safe_load((folder / "add-two.versions" / "0001.yaml").read_text())
    # What docs/guides/storage-backends.md says a version file holds.
    assert list(version_1) == [
        "version",
        "name",
        "owner",
        "author",
        "message",
        "created_at",
        "content_hash",
        "document",
    ]
    assert version_1["document"] == add_doc("add-two")

    # A git user renames the output in an editor and commits; the API sees version 2, by the file.
    path.write_text(path.read_text().replace("total: sum", "result: sum"))
    latest = client.get(f"/v1/workflows/{wf_id}").json()
    assert latest["version"] == 2 and latest["workflow"]["outputs"] == {"result": "sum"}
    newest = client.get(f"/v1/workflows/{wf_id}/versions").json()["items"][0]
    assert (newest["version"], newest["author"], newest["message"]) == (2, "files", "edited in add-two.yaml")
    run = client.post("/v1/runs", json={"workflow_id": wf_id, "inputs": {"a": 1, "b": 2}})
    assert run.status_code == 202, run.text
    done = wait_for_status(client, run.json()["id"], "succeeded")
    assert done["workflow_version"] == 2
    assert client.get(f"/v1/runs/{done['id']}/outputs").json()["outputs"] == {"result": 3}

    # Saving through the API writes the file a git user then commits.
    saved = client.put(
        f"/v1/workflows/{wf_id}", json={"workflow": add_doc("add-two")}, headers={"If-Match": "2"}
    )
    assert saved.status_code == 200, saved.text
    assert yaml.safe_load(path.read_text()) == add_doc("add-two")
    assert sorted(p.name for p in (folder / "add-two.versions").iterdir()) == [
        "0001.yaml",
        "0002.yaml",
        "0003.yaml",
    ]


def test_a_broken_file_is_named_and_a_new_or_removed_file_is_seen(served: tuple[httpx.Client, Path]) -> None:
    client, folder = served
    wf_id = client.post("/v1/workflows", json={"workflow": add_doc("broken-later")}).json()["workflow_id"]
    path = folder / f"{wf_id}.yaml"
    good = path.read_text()

    path.write_text(good.replace("nodes:", "nodes: [unclosed\n", 1))
    problem = client.get(f"/v1/workflows/{wf_id}")
    assert problem.status_code == 422
    assert str(path) in problem.json()["detail"] and "invalid YAML" in problem.json()["detail"]

    path.write_text(
        good.replace("builtin/add@1", "").replace("type: ", "type: 7", 1).replace("outputs:", "outputz:")
    )
    problem = client.get(f"/v1/workflows/{wf_id}")
    assert problem.status_code == 422
    assert str(path) in problem.json()["detail"] and "outputz" in problem.json()["detail"]
    # The other workflows are unaffected; the listing shows the broken one as it last was.
    listed = {w["id"]: w["latest_version"] for w in client.get("/v1/workflows").json()["items"]}
    assert listed[wf_id] == 1

    path.write_text(good)  # fixed: the same document as version 1, so no new version
    assert client.get(f"/v1/workflows/{wf_id}").json()["version"] == 1

    (folder / "by-hand.yaml").write_text(yaml.safe_dump(add_doc("written by hand")))
    # The command line sees the new file too (`rayweave export` opens the installation's store by its settings).
    env = {"RAYWEAVE_HOME": str(folder.parent), "RAYWEAVE_WORKFLOWS_DIR": str(folder)}
    exported = CliRunner().invoke(build_app(), ["export", "by-hand", "--format", "yaml"], env=env)
    assert exported.exit_code == 0, exported.output
    assert yaml.safe_load(exported.stdout) == add_doc("written by hand")
    assert client.get("/v1/workflows/by-hand").json()["workflow"]["name"] == "written by hand"
    (folder / "by-hand.yaml").unlink()  # git rm: the workflow is deleted, its version stays for runs
    assert client.get("/v1/workflows/by-hand").status_code == 404
    assert "by-hand" not in {w["id"] for w in client.get("/v1/workflows").json()["items"]}
    assert (folder / "by-hand.versions" / "0001.yaml").is_file()
