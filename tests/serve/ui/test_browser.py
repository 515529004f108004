"""The web UI in a real browser: Debian's Chromium headless, driven by Playwright, against the API served on
loopback (in-process executor). One browser and one page for the module; screenshots go to
build/test-artifacts/ui. The bundle must be built (`make ui`; `make test` does it before pytest)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve.ui import BUNDLE_DIR

CHROMIUM = Path("/usr/bin/chromium")
# Headless, no sandbox (CI runs as root), and none of Chromium's own connections to Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "build" / "test-artifacts" / "ui"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def page(site: dict[str, Any]) -> Iterator[Any]:
    """One Chromium page for the module (launching the browser is the slow part)."""
    assert (BUNDLE_DIR / "index.html").is_file(), (
        "the web UI is not built: run `make ui` (npm ci + vite build)"
    )
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: apt-get install chromium (.ci/run does it)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.errors = errors
        # Signed in from the start, so each test stands alone; the sign-in test signs out first.
        signed = context.request.post(
            site["url"] + "/ui/api/session", data={"api_key": site["key"]}, headers={"Origin": site["url"]}
        )
        assert signed.status == 204, signed.text()
        yield tab
        context.close()
        browser.close()
    assert not errors, f"the page raised: {errors}"


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _centre(locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _drag(page: Any, source: Any, target: Any) -> None:
    """Drag from one port's handle to another's, as a person wires two ports, once the boxes stopped moving
    (a node just added is laid out again and the view fitted to it: a handle measured before that moves away)."""
    page.locator('[data-testid="graph"][data-settled="true"]').wait_for()
    sx, sy = _centre(source)
    tx, ty = _centre(target)
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move((sx + tx) / 2, (sy + ty) / 2, steps=5)
    page.mouse.move(tx, ty, steps=5)
    page.mouse.up()


def test_sign_in_with_an_api_key_and_see_the_workflows(page: Any, site: dict[str, Any]) -> None:
    page.context.clear_cookies()
    page.goto(site["url"] + "/ui/")
    page.get_by_label("API key").fill("rw_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text()  # refused, with the server's reason
    page.get_by_label("API key").fill(site["key"])
    page.get_by_role("button", name="Sign in").click()
    listing = page.get_by_test_id("workflow-list")
    listing.get_by_role("link", name="slow-chain").wait_for()
    assert listing.get_by_role("link", name="mixed-types").is_visible()
    assert page.get_by_test_id("username").inner_text() == "admin"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["rw_session"]["httpOnly"] and cookies["rw_session"]["expires"] == -1  # a session cookie
    assert page.evaluate("document.cookie").find("rw_session") == -1  # page scripts never see the key
    _shot(page, "workflows")


def test_open_a_workflow_and_see_its_graph_laid_out_with_typed_ports(page: Any, site: dict[str, Any]) -> None:
    page.goto(site["url"] + "/ui/")
    page.get_by_role("link", name="mixed-types").click()
    graph = page.get_by_test_id("graph")
    total = graph.get_by_test_id("node-$outputs")
    total.wait_for()
    inputs, node = graph.get_by_test_id("node-$inputs"), graph.get_by_test_id("node-sum")
    # elkjs laid the data flow out from left to right.
    assert _centre(inputs)[0] < _centre(node)[0] < _centre(total)[0]
    port = node.get_by_test_id("port-sum-in-a")
    assert port.get_attribute("data-type") == "Number" and "Number" in port.inner_text()
    assert "= 2" in node.get_by_test_id("port-sum-in-b").inner_text()  # a constant, shown on its port
    string_port = inputs.get_by_test_id("port-$inputs-out-s")
    int_port = inputs.get_by_test_id("port-$inputs-out-n")
    colour = "return getComputedStyle(el.querySelector('.react-flow__handle')).backgroundColor"
    assert string_port.evaluate(f"el => {{ {colour} }}") != int_port.evaluate(f"el => {{ {colour} }}")
    # Node docs from the catalog.
    node.click()
    docs = page.get_by_test_id("node-docs")
    assert "builtin/add@1" in docs.inner_text() and "math" in docs.inner_text()
    _shot(page, "workflow-graph")


def test_an_incompatible_edge_is_refused_with_the_reason_and_a_good_one_is_saved(
    page: Any, site: dict[str, Any]
) -> None:
    wid = site["ids"]["mixed-types"]
    page.goto(f"{site['url']}/ui/workflows/{wid}")
    page.get_by_test_id("node-sum").wait_for()
    string_out = page.get_by_test_id("port-$inputs-out-s").locator(".react-flow__handle")
    int_out = page.get_by_test_id("port-$inputs-out-n").locator(".react-flow__handle")
    b_in = page.get_by_test_id("port-sum-in-b").locator(".react-flow__handle")
    _drag(page, string_out, b_in)
    notice = page.get_by_test_id("notice")
    notice.wait_for()
    assert re.search(r"Refused \$inputs\.s → sum\.b: String is not assignable to Number", notice.inner_text())
    assert page.locator(".react-flow__edge").count() == 2  # nothing was added
    _shot(page, "edge-refused")
    _drag(page, int_out, b_in)  # Int into a Number port: accepted
    page.wait_for_function("() => document.querySelectorAll('.react-flow__edge').length === 3")
    assert "edited" in page.get_by_test_id("version").inner_text()
    page.get_by_test_id("diagnostic-count").filter(has_text="valid").wait_for()
    page.get_by_test_id("save").click()
    page.get_by_test_id("notice").filter(has_text="Saved as version 2").wait_for()
    stored = httpx.get(
        f"{site['url']}/v1/workflows/{wid}", headers={"Authorization": f"Bearer {site['key']}"}
    ).json()
    assert stored["version"] == 2 and stored["workflow"]["nodes"]["sum"]["in"]["b"] == "$inputs.n"
    # A node from the catalog: found by what it accepts, added, documented, and flagged until wired.
    page.get_by_label("Search the node catalog").fill("change_case accepts:String")
    page.get_by_test_id("add-builtin/change_case@1").click()
    page.get_by_test_id("node-change_case").wait_for()
    assert page.get_by_test_id("params-form").get_by_label(re.compile("case")).count() == 1
    page.get_by_test_id("diagnostic-count").filter(has_text="error").wait_for()
    assert "change_case" in page.get_by_test_id("diagnostics").inner_text()
    _shot(page, "editor")


def test_start_a_run_and_watch_node_states_turn_succeeded_live(page: Any, site: dict[str, Any]) -> None:
    wid = site["ids"]["slow-chain"]
    # Through the page as a person goes (no reload): the graph first, so the run page only fetches the run.
    page.goto(f"{site['url']}/ui/workflows/{wid}")
    page.get_by_test_id("node-s2").wait_for()
    page.get_by_role("button", name="Runs").click()
    form = page.get_by_test_id("run-form")
    form.get_by_label(re.compile("^x")).fill("7")
    started = time.monotonic()
    form.get_by_role("button", name="Run").click()
    last = page.get_by_test_id("node-s2")
    last.wait_for()
    # Seen running before it succeeded: the state comes live from the event socket, not from a reload.
    page.locator("[data-testid='node-s2'][data-status='running']").wait_for()
    page.locator("[data-testid='node-s2'][data-status='succeeded']").wait_for()
    assert time.monotonic() - started < 20
    # s1b, merged into its twin s1, has s1's state (it ran once, as s1: no attempt of its own on the timeline).
    for name in ("s0", "s1", "s1b"):
        assert page.get_by_test_id(f"node-{name}").get_attribute("data-status") == "succeeded"
    page.get_by_test_id("run-status").filter(has_text="succeeded").wait_for()
    assert page.get_by_test_id("timeline").locator(".bar.succeeded").count() == 3
    page.get_by_test_id("node-s1b").click()
    page.get_by_test_id("merged-into").filter(has_text="Merged into s1").wait_for()
    page.get_by_test_id("node-s1").click()
    inspector = page.get_by_test_id("inspector")
    assert "builtin/sleep@1" in inspector.inner_text() and "s0.out" in inspector.inner_text()
    page.get_by_test_id("node-$inputs").click()
    page.get_by_test_id("run-outputs").filter(has_text="7").wait_for()
    _shot(page, "run")
    # Replay: scrub back to before the first event, one event on, then to the end again.
    slider = page.get_by_test_id("replay")
    slider.focus()
    page.keyboard.press("Home")
    page.get_by_test_id("replay-event").filter(has_text="before the first event").wait_for()
    assert page.get_by_test_id("node-s2").get_attribute("data-status") == "pending"
    assert page.get_by_test_id("timeline").locator(".bar").count() == 0
    page.keyboard.press("End")
    page.locator("[data-testid='node-s2'][data-status='succeeded']").wait_for()
    assert "run.succeeded" in page.get_by_test_id("replay-event").inner_text()


def test_the_versions_tab_draws_what_changed_between_two_versions(page: Any, site: dict[str, Any]) -> None:
    page.goto(f"{site['url']}/ui/workflows/{site['ids']['versioned']}?tab=versions")
    page.get_by_test_id("node-neg").wait_for()  # the diff of version 1 -> 2, drawn as one graph
    assert page.get_by_test_id("versions").locator("tbody tr").count() == 2
    assert page.get_by_test_id("node-neg").get_attribute("data-change") == "added"
    assert page.get_by_test_id("node-sum").get_attribute("data-change") == "changed"  # its constant went
    # Added: n -> sum.b, sum -> neg, neg -> total; removed: sum -> total.
    assert page.locator(".react-flow__edge.edge-added").count() == 3
    assert page.locator(".react-flow__edge.edge-removed").count() == 1
    _shot(page, "versions-diff")


def test_a_failed_node_shows_its_error_and_traceback_in_the_inspector(
    page: Any, site: dict[str, Any]
) -> None:
    started = httpx.post(
        f"{site['url']}/v1/runs",
        json={"workflow_id": site["ids"]["fails"], "inputs": {"x": 1}},
        headers={"Authorization": f"Bearer {site['key']}"},
    )
    assert started.status_code == 202, started.text
    page.goto(f"{site['url']}/ui/runs/{started.json()['id']}")
    page.locator("[data-testid='node-boom'][data-status='failed']").wait_for()
    page.get_by_test_id("run-status").filter(has_text="failed").wait_for()
    page.get_by_test_id("node-boom").click()
    error = page.get_by_test_id("node-error")
    assert "<b>no</b>" in error.inner_text()  # user text shown as text, never as markup
    assert error.locator("b", has_text="no").count() == 0
    assert "Traceback" in error.locator(".traceback").inner_text()
    _shot(page, "run-failed")


def _finished_run(site: dict[str, Any], workflow: str, inputs: dict[str, Any]) -> str:
    """Start a run through the API and wait until it has ended; its id."""
    headers = {"Authorization": f"Bearer {site['key']}"}
    started = httpx.post(
        f"{site['url']}/v1/runs",
        json={"workflow_id": site["ids"][workflow], "inputs": inputs},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    run_id = str(started.json()["id"])
    deadline = time.monotonic() + 20
    while httpx.get(f"{site['url']}/v1/runs/{run_id}", headers=headers).json()["status"] not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        assert time.monotonic() < deadline, f"run {run_id} did not end"
        time.sleep(0.1)
    return run_id


def test_compare_two_runs_of_a_workflow_node_by_node(page: Any, site: dict[str, Any]) -> None:
    first = _finished_run(site, "mixed-types", {"n": 1, "s": "a"})
    second = _finished_run(site, "mixed-types", {"n": 2, "s": "b"})
    page.goto(f"{site['url']}/ui/runs/{second}")
    page.get_by_test_id("run-status").filter(has_text="succeeded").wait_for()
    page.get_by_test_id("compare-with").select_option(first)
    row = page.get_by_test_id("compare-sum")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "sum"
    assert cells[1] == "succeeded" and cells[3] == "succeeded"
    assert re.fullmatch(r"\d+\.\d+ s", cells[2]) and re.fullmatch(r"\d+\.\d+ s", cells[4]), cells
    assert re.fullmatch(r"[+\u2212]\d+\.\d+ s", cells[5]), cells
    assert page.get_by_test_id("compare-table").locator("thead th").nth(1).inner_text() == first[:8]
    _shot(page, "run-compare")


def test_the_header_counts_new_anomalies_and_lists_them_with_links_to_their_runs(
    page: Any, site: dict[str, Any]
) -> None:
    from engine.store import NewEvent
    from nodes.ids import NodeId, RunId
    from nodes.states import EventType

    run_id = _finished_run(site, "mixed-types", {"n": 3, "s": "c"})
    # The event the detector records after a run's final event (engine.analytics.live), for a 3x slowdown; a
    # real one needs ten runs of warm-up first (tests/engine/analytics covers the detection).
    anomaly = {
        "kind": "duration",
        "workflow_id": site["ids"]["mixed-types"],
        "node_id": "sum",
        "node_type": "builtin/add@1",
        "run_id": run_id,
        "at": "2026-12-07T15:00:00+00:00",
        "value": 12.0,
        "expected": 4.0,
        "threshold": 8.0,
        "delay": 0,
    }
    site["store"].events.append(RunId(run_id), [NewEvent(EventType.ANOMALY_DETECTED, NodeId("sum"), anomaly)])
    page.goto(site["url"] + "/ui/")
    page.get_by_test_id("anomalies-badge").wait_for()
    assert int(page.get_by_test_id("anomalies-bell").get_attribute("data-count")) >= 1
    page.get_by_test_id("anomalies-bell").click()
    entry = page.get_by_test_id("anomalies-panel").locator("li", has_text="took 12 s, usually 4.0 s").first
    entry.filter(has_text="mixed-types").wait_for()  # the workflow's name, not its id
    # Opening the panel marked them seen: no badge, after a reload too (localStorage).
    assert page.get_by_test_id("anomalies-bell").get_attribute("data-count") == "0"
    _shot(page, "anomalies")
    entry.get_by_role("link").click()
    page.wait_for_url(f"**/ui/runs/{run_id}")
    page.get_by_test_id("run-status").filter(has_text="succeeded").wait_for()
    page.reload()
    page.get_by_test_id("run-status").wait_for()
    page.locator("[data-testid='anomalies-bell'][data-count='0']").wait_for()


# Whether the tip of the one remote pointer drawn is inside the element of the given test id.
POINTER_OVER = """(id) => {
  const tip = document.querySelector('[data-testid="remote-cursor"] svg');
  const box = document.querySelector(`[data-testid="${id}"]`);
  if (!tip || !box) return false;
  const a = tip.getBoundingClientRect(), b = box.getBoundingClientRect();
  return a.left >= b.left && a.left <= b.right && a.top >= b.top && a.top <= b.bottom;
}"""


def test_two_people_co_edit_a_workflow_live_and_save_it(page: Any, site: dict[str, Any]) -> None:
    wid = site["ids"]["shared"]
    # A third client, y-websocket in Node.js, joins first (started now, so its start overlaps the pages').
    node_client = _node_collab_client(site, wid)
    other = page.context.browser.new_context(viewport={"width": 1400, "height": 900})
    other.set_default_timeout(TIMEOUT_MS)
    try:
        signed = other.request.post(
            site["url"] + "/ui/api/session", data={"api_key": site["key"]}, headers={"Origin": site["url"]}
        )
        assert signed.status == 204
        bob = other.new_page()
        for person in (page, bob):
            person.goto(f"{site['url']}/ui/workflows/{wid}")
            person.get_by_test_id("co-edit").click()
            person.get_by_test_id("co-edit-status").filter(has_text="live").wait_for()
        # Presence: who is here, the Node.js client included; Bob, the last to join, is told at once.
        for person in (page, bob):
            person.get_by_test_id("co-editors").filter(
                has_text="3 editing: admin, admin, node-script"
            ).wait_for()
        # Alice points at sum, then selects it: Bob sees her pointer over sum (shared in graph coordinates,
        # drawn where sum is in his own view) and sum outlined, named and in her colour.
        for person in (page, bob):
            person.locator('[data-testid="graph"][data-settled="true"]').wait_for()
        x, y = _centre(page.get_by_test_id("node-sum"))
        page.mouse.move(x - 40, y - 10)
        page.mouse.move(x, y, steps=4)
        cursor = bob.get_by_test_id("remote-cursor")
        cursor.wait_for()
        assert cursor.get_attribute("data-user") == "admin" and cursor.inner_text() == "admin"
        bob.wait_for_function(POINTER_OVER, arg="node-sum")
        assert cursor.get_attribute("data-over") == "sum"
        # Bob drags sum down in his view (where boxes stand is not shared): Alice's pointer, anchored on sum,
        # is drawn on sum where it now stands.
        bx, by = _centre(bob.get_by_test_id("node-sum").locator(".rw-node-header"))
        bob.mouse.move(bx, by)
        bob.mouse.down()
        bob.mouse.move(bx, by + 200, steps=5)
        bob.mouse.up()
        bob.wait_for_function(POINTER_OVER, arg="node-sum")
        page.get_by_test_id("node-sum").click()
        outline = bob.get_by_test_id("remote-selection-sum")
        outline.wait_for()
        assert outline.get_attribute("data-color") == cursor.get_attribute("data-color")
        assert outline.get_attribute("data-user") == "admin"
        ox, oy = _centre(outline)
        sx, sy = _centre(bob.get_by_test_id("node-sum"))
        assert abs(ox - sx) < 2 and abs(oy - sy) < 2
        assert page.get_by_test_id("remote-selection-sum").count() == 0  # one's own is not drawn
        _shot(bob, "co-edit-presence")
        # The Node.js client adds node js; it sets the description as soon as it sees Alice's node, while Bob
        # wires that node.
        assert node_client.stdin is not None and node_client.stdout is not None
        assert node_client.stdout.readline() == "synced\n", node_client.communicate(timeout=5)[1]
        node_client.stdin.write("go\n")
        node_client.stdin.flush()
        try:
            for person in (page, bob):
                person.get_by_test_id("node-js").wait_for()
            # Alice adds a node; Bob sees it and wires it; Alice sees the wire.
            page.get_by_label("Search the node catalog").fill("change_case")
            page.get_by_test_id("add-builtin/change_case@1").click()
            bob.get_by_test_id("node-change_case").wait_for()
            _drag(
                bob,
                bob.get_by_test_id("port-$inputs-out-s").locator(".react-flow__handle"),
                bob.get_by_test_id("port-change_case-in-text").locator(".react-flow__handle"),
            )
            page.wait_for_function("() => document.querySelectorAll('.react-flow__edge').length === 4")
            line = node_client.stdout.readline()
            assert line, f"the Node.js client failed: {node_client.communicate(timeout=5)[1]}"
            from_node = json.loads(line)
            assert from_node["meta"]["description"] == "edited from Node.js"
            # All three hold the same document (compared as data: key order may differ).
            for person in (page, bob):
                deadline = time.monotonic() + 5
                while (held := person.evaluate("window.rayweaveCollab.document()")) != from_node:
                    assert time.monotonic() < deadline, (held, from_node)
                    time.sleep(0.05)
        finally:
            node_client.stdin.close()
            assert node_client.wait(10) == 0
        _shot(bob, "co-edit")
        page.get_by_test_id("diagnostic-count").filter(has_text="valid").wait_for()
        page.get_by_test_id("save").click()
        page.get_by_test_id("notice").filter(has_text="Saved as version 2").wait_for()
    finally:
        other.close()
        if node_client.poll() is None:
            node_client.kill()
            node_client.wait(10)
    stored = httpx.get(
        f"{site['url']}/v1/workflows/{wid}", headers={"Authorization": f"Bearer {site['key']}"}
    ).json()
    assert stored["version"] == 2
    assert stored["workflow"]["nodes"]["change_case"]["in"] == {"text": "$inputs.s"}
    assert stored["workflow"]["nodes"]["js"] == {"type": "builtin/negate@1", "in": {"x": "sum.out"}}
    assert stored["workflow"]["description"] == "edited from Node.js"


def _node_collab_client(site: dict[str, Any], workflow_id: str) -> subprocess.Popen[str]:
    """serve/ui/web/scripts/collab-client.mjs in `converge` mode on the workflow's shared document: Yjs and
    y-websocket from the page's own node_modules (nothing downloaded)."""
    node = shutil.which("node")
    assert node, "Node.js is missing (it builds the web UI too)"
    web = BUNDLE_DIR.parent / "web"
    # Node.js 22 has a global WebSocket; 20 needs the flag.
    has = subprocess.run([node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"], check=False)
    flags = [] if has.returncode == 0 else ["--experimental-websocket"]
    url = site["url"].replace("http://", "ws://") + f"/v1/workflows/{workflow_id}"
    return subprocess.Popen(
        [node, "--no-warnings", *flags, "scripts/collab-client.mjs", "converge", url],
        cwd=web,
        env={"PATH": "/usr/bin:/bin", "RAYWEAVE_API_KEY": site["key"]},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_run_to_a_node_rerun_a_node_and_page_a_table_output(page: Any, site: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {site['key']}"}
    rows = [{"n": i, "word": f"w{i}"} for i in range(30)]
    doc = {
        "format": "rayweave.workflow/1",
        "name": "debugging",
        "inputs": {"n": {"type": "Int"}},
        "nodes": {
            "sum": {"type": "builtin/add@1", "in": {"a": "$inputs.n", "b": {"value": 2}}},
            "neg": {"type": "builtin/negate@1", "in": {"x": "sum.out"}},
            "rows": {"type": "builtin/records_to_table@1", "in": {"value": {"value": rows}}},
        },
        "outputs": {"neg": "neg.out", "rows": "rows.out"},
    }
    created = httpx.post(f"{site['url']}/v1/workflows", json={"workflow": doc}, headers=headers)
    assert created.status_code == 201, created.text
    site["ids"]["debugging"] = created.json()["workflow_id"]
    first = _finished_run(site, "debugging", {"n": 1})
    page.goto(f"{site['url']}/ui/runs/{first}")
    page.get_by_test_id("run-status").filter(has_text="succeeded").wait_for()

    # The table output of `rows`, twenty rows a page, with its columns' types.
    page.get_by_test_id("node-rows").click()
    table = page.get_by_test_id("table-out")
    label = page.get_by_test_id("table-out-page")
    label.filter(has_text="rows 1\u201320 of 30").wait_for()
    assert table.locator("thead th").all_inner_texts() == ["n int64", "word string"]
    table.get_by_role("button", name="Next rows").click()
    label.filter(has_text="rows 21\u201330 of 30").wait_for()
    assert table.locator("tbody tr").first.locator("td").all_inner_texts() == ["20", "w20"]
    # This server runs nodes in-process: no Ray task to show or link.
    assert "in-process" in page.get_by_test_id("ray-task").inner_text()
    _shot(page, "run-table-preview")

    # The inspector shows what each input received, read through the port that fed it, and each output value.
    page.get_by_test_id("node-neg").click()
    assert page.get_by_test_id("input-x-source").inner_text() == "sum.out"
    page.get_by_test_id("input-x-value").filter(has_text="3").wait_for()
    assert page.get_by_test_id("input-x-value").inner_text() == "3"
    assert page.get_by_test_id("input-x-value-note").inner_text() == "int, 1 B as JSON"
    page.get_by_test_id("output-out-value").filter(has_text="-3").wait_for()
    page.get_by_test_id("node-sum").click()
    assert page.get_by_test_id("input-a-source").inner_text() == "$inputs.n"
    page.get_by_test_id("input-a-value").filter(has_text="1").wait_for()
    page.get_by_test_id("input-b-value").filter(has_text="2").wait_for()
    page.get_by_test_id("node-rows").click()
    assert '"word": "w29"' in page.get_by_test_id("input-value-value").inner_text()
    _shot(page, "run-node-values")

    # Re-run neg with the input it had (sum's recorded output): a new run of neg alone.
    page.get_by_test_id("node-neg").click()
    page.get_by_test_id("rerun-node").click()
    page.wait_for_url(re.compile(r"/ui/runs/(?!" + first + ")"))
    page.get_by_test_id("run-status").filter(has_text="succeeded").wait_for()
    assert page.get_by_test_id("run-scope").inner_text().startswith("re-run of neg")
    page.locator("[data-testid='node-neg'][data-status='succeeded']").wait_for()
    # sum's recorded output was used (shown as cached), rows is not part of the re-run.
    assert page.get_by_test_id("node-sum").get_attribute("data-status") == "cached"
    assert page.get_by_test_id("node-rows").get_attribute("data-status") == "outside"
    page.get_by_test_id("run-outputs").filter(has_text="neg__out").wait_for()
    assert '"neg__out": -3' in page.get_by_test_id("run-outputs").inner_text()

    # Run to sum: sum and its ancestors only, neg and rows are not part of it.
    page.get_by_test_id("node-sum").click()
    page.get_by_test_id("run-to-here").click()
    page.get_by_test_id("run-scope").filter(has_text="run to sum").wait_for()
    page.get_by_test_id("run-status").filter(has_text="succeeded").wait_for()
    assert page.get_by_test_id("node-neg").get_attribute("data-status") == "outside"
    assert page.get_by_test_id("node-rows").get_attribute("data-status") == "outside"
    page.get_by_test_id("run-outputs").filter(has_text="sum__out").wait_for()
    _shot(page, "run-to-here")


def test_a_map_node_draws_its_sub_workflow_with_states_across_and_within_elements(
    page: Any, site: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {site['key']}"}
    doc = {
        "format": "rayweave.workflow/1",
        "name": "inverses",
        "inputs": {"xs": {"type": "List[Int]"}},
        "nodes": {
            "each": {
                "type": "builtin/map@1",
                "in": {"items": "$inputs.xs"},
                "params": {
                    "workflow": {
                        "format": "rayweave.workflow/1",
                        "name": "inverse-plus-one",
                        "inputs": {"item": {"type": "Int"}},
                        "nodes": {
                            "inv": {
                                "type": "builtin/divide@1",
                                "in": {"a": {"value": 1}, "b": "$inputs.item"},
                            },
                            "plus": {"type": "builtin/add@1", "in": {"a": "inv", "b": {"value": 1}}},
                        },
                        "outputs": {"out": "plus.out"},
                    }
                },
            }
        },
        "outputs": {"each": "each.out"},
    }
    created = httpx.post(f"{site['url']}/v1/workflows", json={"workflow": doc}, headers=headers)
    assert created.status_code == 201, created.text
    site["ids"]["inverses"] = created.json()["workflow_id"]
    run = _finished_run(site, "inverses", {"xs": [1, 0, 2]})  # element 1 divides by zero
    page.goto(f"{site['url']}/ui/runs/{run}")
    page.get_by_test_id("run-status").filter(has_text="failed").wait_for()

    # The map node: its sub-workflow drawn, each node counting its elements per state.
    page.get_by_test_id("node-each").click()
    graph = page.get_by_test_id("map-graph")
    assert graph.locator("h4").inner_text() == "Sub-workflow, all elements"
    inv = page.get_by_test_id("map-node-inv")
    assert inv.get_attribute("data-counts") == "failed=1,succeeded=2"
    assert inv.get_attribute("data-status") == "failed"
    assert "succeeded=2" in (page.get_by_test_id("map-node-plus").get_attribute("data-counts") or "")
    assert graph.locator("path.map-wire").count() == 1  # inv -> plus
    _shot(page, "run-map-sub-workflow")

    # A click on a box opens that node in the element where it failed: the graph shows that element's states.
    inv.click()
    graph.locator("h4").filter(has_text="element [1]").wait_for()
    assert page.get_by_test_id("map-node-inv").get_attribute("data-status") == "failed"
    side = page.locator("aside.side").inner_text()
    assert "division by zero" in side.lower() and "has no node" not in side
    page.get_by_test_id("map-node-plus").click()  # the same element's next node
    graph.locator("h4").filter(has_text="element [1]").wait_for()
    _shot(page, "run-map-element")


def _counts(text: str | None) -> dict[str, int]:
    """A group's `data-counts` ("succeeded:12 pending:322") as a dict."""
    return {state: int(n) for state, n in (item.split(":") for item in (text or "").split())}


def test_a_run_of_a_thousand_nodes_is_drawn_folded_and_its_lists_virtualised(
    page: Any, site: dict[str, Any]
) -> None:
    # Three steps, each fanning out to 334 adds, all summed: 1,005 nodes, about 2,000 events. The page watches
    # it live and cancels it (this server runs it in-process: about 20 s to the end on a quiet machine).
    steps = 3
    nodes: dict[str, Any] = {
        f"s{i}": {
            "type": "builtin/sleep@1",
            "in": {"value": "$inputs.x" if i == 0 else f"s{i - 1}.out"},
            "params": {"seconds": 0.3},
        }
        for i in range(steps)
    }
    for i in range(1001):
        nodes[f"f{i}"] = {"type": "builtin/add@1", "in": {"a": f"s{i % steps}.out", "b": {"value": i}}}
    nodes["total"] = {"type": "builtin/sum@1", "in": {"values": [f"f{i}.out" for i in range(1001)]}}
    doc = {
        "format": "rayweave.workflow/1",
        "name": "thousand",
        "inputs": {"x": {"type": "Int"}},
        "nodes": nodes,
        "outputs": {"total": "total.out"},
    }
    headers = {"Authorization": f"Bearer {site['key']}"}
    created = httpx.post(f"{site['url']}/v1/workflows", json={"workflow": doc}, headers=headers)
    assert created.status_code == 201, created.text
    started = httpx.post(
        f"{site['url']}/v1/runs",
        json={"workflow_id": created.json()["workflow_id"], "inputs": {"x": 1}},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    opened = time.monotonic()
    page.goto(f"{site['url']}/ui/runs/{started.json()['id']}")
    graph = page.locator("[data-testid='graph'][data-settled='true']")
    graph.wait_for()
    assert time.monotonic() - opened < 10  # 1.4 s at load 8 (bench/ui_bench.py: 2 s for 1,000 nodes)
    # Each step's fan-out is one group box: a handful of boxes for 1,005 nodes.
    assert graph.get_attribute("data-nodes") == "9"  # 3 steps, 3 groups, total, inputs, outputs
    assert "1005 nodes, 3 groups" in page.get_by_test_id("group-hint").inner_text()
    # The first group's counts change live, and always add up to its 334 members.
    group = "f0…f999"
    page.wait_for_function(
        "(id) => / succeeded:\\d+|^succeeded:/.test(document.querySelector(`[data-testid='counts-${id}']`)"
        "?.dataset.counts ?? '')",
        arg=group,
        timeout=30_000,
    )
    counts = _counts(page.get_by_test_id(f"counts-{group}").get_attribute("data-counts"))
    assert sum(counts.values()) == 334 and counts["succeeded"] > 0, counts
    assert page.get_by_test_id("node-s0").get_attribute("data-status") == "succeeded"
    _shot(page, "run-thousand")

    # The node list and the event log hold a row per node and per event, and draw only those in view.
    page.get_by_test_id("panel-nodes").click()
    listed = page.get_by_test_id("node-list")
    assert listed.get_attribute("data-rows") == "1005"
    assert int(listed.get_attribute("data-drawn") or 0) < 40
    page.get_by_label("Find a node by name").fill("f99")
    page.get_by_test_id("list-f999").wait_for()
    assert listed.get_attribute("data-rows") == "11"  # f99, f990..f999
    page.get_by_test_id("panel-events").click()
    log = page.get_by_test_id("event-log")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=event-log]').dataset.rows) > 100"
    )
    assert int(log.get_attribute("data-drawn") or 0) < 40

    # A group in the inspector: its counts and members; expanded, its members are drawn one by one.
    page.get_by_test_id(f"node-{group}").locator(".rw-node-header").click()
    assert page.get_by_test_id("group-members").get_attribute("data-rows") == "334"
    page.get_by_test_id("expand-group").click()
    page.locator("[data-testid='graph'][data-nodes='342'][data-settled='true']").wait_for()
    assert page.get_by_test_id(f"node-{group}").count() == 0
    # Those in view are drawn (a big graph draws only what is in view), each with its own state.
    members = "document.querySelectorAll(\"[data-testid^='node-f'][data-status='succeeded']\").length"
    page.wait_for_function(f"() => {members} > 10")
    # Cancelled from the page (unless it just ended); the log follows to the run's last event.
    page.evaluate(
        "() => [...document.querySelectorAll('button')].find((b) => b.textContent === 'Cancel')?.click()"
    )
    page.get_by_test_id("run-status").filter(has_text=re.compile("cancelled|succeeded")).wait_for(
        timeout=30_000
    )
    log.filter(has_text=re.compile(r"run\.(cancelled|succeeded)")).wait_for()
