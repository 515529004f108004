"""`rayweave report`: the HTML page renders in headless Chromium with its four figures; PNG and PDF exports."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.store import open_store
from serve.cli import build_app
from tests.engine.analytics.test_breakdown import T0, record_runs

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIGURE_IDS = ["duration-trend", "node-breakdown", "critical-path-gantt", "failure-heatmap"]
DOC = {
    "format": "rayweave.workflow/1",
    "name": "two-steps",
    "nodes": {"a": {"type": "t/a@1"}, "b": {"type": "t/b@1", "in": {"x": "a.out"}}},
}


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("report-home")
    url = f"sqlite:///{home / 'rayweave.db'}"
    store = open_store(url)
    wf = store.workflows.create(DOC).workflow_id
    record_runs(store, wf, 30, owner="ada", start=T0, seed=5)
    record_runs(store, wf, 30, owner="ada", start=T0 + timedelta(days=1), seed=6)
    empty = store.workflows.create({**DOC, "name": "never-ran"}).workflow_id
    store.close()
    return {"home": home, "url": url, "wf": wf, "empty": empty}


def _report(installation: dict[str, Any], *args: str) -> tuple[int, str]:
    env = {"RAYWEAVE_HOME": str(installation["home"]), "RAYWEAVE_DATABASE_URL": ""}
    result = CliRunner().invoke(build_app(), ["report", *args, "--url", installation["url"]], env=env)
    return result.exit_code, result.output


def test_html_report_renders_its_figures_in_chromium(installation: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, output = _report(installation, installation["wf"], "--out", str(out))
    assert code == 0, output
    assert "60 runs" in output
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: apt-get install chromium (.ci/run does it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(out.as_uri())
            for figure in FIGURE_IDS:
                svg = page.locator(f"figure#{figure} svg")
                assert svg.count() == 1, f"figure {figure} has no SVG"
                box = svg.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100, (figure, box)
                # Drawn, not an empty frame: the SVG holds paths (marks, bars, cells).
                assert page.locator(f"figure#{figure} svg path").count() > 10, figure
            assert "a → b" in page.locator("table#summary").inner_text()
        finally:
            browser.close()
    assert not errors


def test_png_and_pdf_exports(installation: dict[str, Any], tmp_path: Path) -> None:
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF")):
        out = tmp_path / f"report{suffix}"
        code, output = _report(installation, installation["wf"], "--out", str(out))
        assert code == 0, output
        assert out.read_bytes()[:4] == magic
    # One page per figure.
    assert len(re.findall(rb"/Type\s*/Page[^s]", (tmp_path / "report.pdf").read_bytes())) == 4


def test_bad_input_gets_a_clear_answer(installation: dict[str, Any], tmp_path: Path) -> None:
    code, output = _report(installation, "nope", "--out", str(tmp_path / "r.html"))
    assert code == 1 and "workflow 'nope' does not exist" in output
    code, output = _report(installation, installation["wf"], "--out", str(tmp_path / "r.txt"))
    assert code == 2 and ".html, .png or .pdf" in output
    code, output = _report(installation, installation["wf"], "--since", "2027-01-02", "--until", "2027-01-01")
    assert code == 2 and "must be before until" in output
    code, output = _report(installation, installation["empty"], "--out", str(tmp_path / "e.html"))
    assert code == 0, output
    assert "no finished run" in (tmp_path / "e.html").read_text()
    code, output = _report(installation, installation["empty"], "--out", str(tmp_path / "e.png"))
    assert code == 1 and "nothing to draw" in output
