"""The monitoring report in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright) opens the page with the network cut off, and every plot must have drawn its data
marks, with no console error, no page error and no dialog; an entity value
``<script>alert(1)</script>`` shows as text and runs nothing.

Screenshots are kept as test artifacts in ``$SKEWLESS_TEST_ARTIFACTS`` (default
``tests/artifacts/``, git-ignored); the path is printed. Skipped only when Chromium or
Playwright is missing and ``CI_REQUIRE_BROWSER`` is not set (``.ci/run`` sets it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skewless.monitoring.report import render_report
from skewless.testing.monitoring_results import HOSTILE, audit_result, monitor_history, monitor_result

CHROMIUM = Path(os.environ.get("SKEWLESS_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SKEWLESS_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
WIDTH = 1280
RENDER_TIMEOUT_MS = 120_000      # generous: a loaded 2-core machine parses 4.8 MB of plotly.js


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return 'playwright is not installed (pip install -e ".[dev]")'
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI_REQUIRE_BROWSER"):
            pytest.fail(f"CI_REQUIRE_BROWSER is set but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nreport screenshots: {ARTIFACTS}")
    return ARTIFACTS


class Opened:
    """A page opened in Chromium, with what went wrong on the way."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.context = browser.new_context(viewport={"width": WIDTH, "height": 900})
        page = self.page = self.context.new_page()
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("dialog", self._dialog)

        def route(r: Any) -> None:
            if r.request.url.startswith("file://"):
                r.continue_()
            else:                           # the page must need nothing from the network
                self.requests.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(path.as_uri(), wait_until="load", timeout=RENDER_TIMEOUT_MS)
        page.wait_for_selector("body[data-plots-rendered], body[data-plots-failed]", state="attached",
                               timeout=RENDER_TIMEOUT_MS)
        failed = page.get_attribute("body", "data-plots-failed")
        assert failed is None, f"a plot failed to draw: {failed} (page errors: {self.page_errors})"

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def plots(self) -> list[dict[str, Any]]:
        """Per plot div: its kind, the plotly SVG layers, its trace groups and data marks
        (bar paths, line paths, markers, heatmap images) and the drawn size."""
        return self.page.evaluate("""() => Array.from(document.querySelectorAll('div.plot')).map(d => {
            const svg = d.querySelector('svg.main-svg');
            const marks = Array.from(d.querySelectorAll(
                'g.trace g.point path, g.trace path.js-line, g.trace path.point, g.hm image'))
              .filter(m => m.tagName === 'image' ? m.getAttribute('href') || m.getAttribute('xlink:href')
                                                   : (m.getAttribute('d') || '').length > 2);
            const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
            return {id: d.id, kind: d.dataset.kind, key: d.dataset.key,
                    svgs: d.querySelectorAll('svg.main-svg').length,
                    traces: d.querySelectorAll('g.trace, g.hm').length,
                    marks: marks.length, width: box.width, height: box.height,
                    title: (d.querySelector('.gtitle') || {}).textContent || ''};
        })""")

    def close(self) -> None:
        self.context.close()


def _write(tmp_path: Path, name: str, html: str) -> Path:
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return path


def _check_every_plot_rendered(opened: Opened) -> list[dict[str, Any]]:
    plots = opened.plots()
    assert plots, "the page has no plot"
    for p in plots:
        assert p["svgs"] >= 1, f"{p['id']} ({p['kind']} {p['key']}): plotly drew no SVG"
        assert p["traces"] >= 1 and p["marks"] >= 1, f"{p['id']} ({p['kind']} {p['key']}): no data marks: {p}"
        assert p["width"] > 300 and p["height"] > 200, f"{p['id']}: drawn {p['width']}x{p['height']}"
        assert p["title"], f"{p['id']} ({p['kind']}) has no title"
    rendered = opened.page.get_attribute("body", "data-plots-rendered")
    assert rendered == str(len(plots))
    assert opened.console_errors == [] and opened.page_errors == [] and opened.dialogs == []
    assert opened.requests == []
    return plots


def test_every_plot_of_the_incident_report_renders(browser: Any, artifacts: Path, tmp_path: Path) -> None:
    page = render_report(monitor_result("incident"), [audit_result(incident=True)],
                         history=monitor_history("incident"))
    opened = Opened(browser, _write(tmp_path, "incident.html", page))
    try:
        plots = _check_every_plot_rendered(opened)
        kinds = {p["kind"] for p in plots}
        assert kinds == {"freshness", "completeness", "drift", "histogram", "audit", "latency"}
        opened.page.screenshot(path=str(artifacts / "report-incident.png"), full_page=True)
        for sid in ("summary", "freshness", "completeness", "drift", "audit", "latency"):
            opened.page.locator(f"section#{sid}").screenshot(path=str(artifacts / f"report-incident-{sid}.png"))
        scroll = opened.page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= WIDTH, f"the page is {scroll}px wide at a {WIDTH}px window"
    finally:
        opened.close()


def test_a_healthy_report_renders(browser: Any, artifacts: Path, tmp_path: Path) -> None:
    page = render_report(monitor_result("healthy"), [audit_result(incident=False)])
    opened = Opened(browser, _write(tmp_path, "healthy.html", page))
    try:
        _check_every_plot_rendered(opened)
        assert opened.page.locator("#summary .ok-line").inner_text() == "Every check is OK."
        opened.page.screenshot(path=str(artifacts / "report-healthy.png"), full_page=True)
    finally:
        opened.close()


def test_a_script_in_an_entity_value_is_shown_not_run(browser: Any, artifacts: Path, tmp_path: Path) -> None:
    page = render_report(monitor_result("incident", feature_prefix=HOSTILE),
                         [audit_result(incident=True, hostile=True)], title=HOSTILE)
    opened = Opened(browser, _write(tmp_path, "hostile.html", page))
    try:
        _check_every_plot_rendered(opened)                        # no dialog, no error
        assert opened.dialogs == []
        entities = opened.page.locator("table.worst td.entity").all_inner_texts()
        assert f"merchant_id={HOSTILE}" in entities               # shown as text
        assert opened.page.locator("h1").inner_text() == HOSTILE
        titles = [p["title"] for p in opened.plots()]
        assert any(HOSTILE in t for t in titles)                  # plotly shows it verbatim too
        assert opened.page.evaluate("document.querySelectorAll('script').length") == 4  # ours only
        opened.page.locator("section#audit").screenshot(path=str(artifacts / "report-hostile-audit.png"))
    finally:
        opened.close()


def test_an_empty_report_says_so_without_plots(browser: Any, tmp_path: Path) -> None:
    opened = Opened(browser, _write(tmp_path, "empty.html", render_report(None, [])))
    try:
        assert opened.plots() == []
        assert opened.page.get_attribute("body", "data-plots-rendered") == "0"
        assert "No monitor or audit result was given." in opened.page.locator("#summary").inner_text()
        assert opened.console_errors == [] and opened.page_errors == []
    finally:
        opened.close()


def test_the_check_catches_a_plot_that_drew_nothing(browser: Any, tmp_path: Path) -> None:
    """The checks above are not vacuous: a plot given no data fails them, named."""
    page = render_report(monitor_result("healthy"), [])
    broken = page.replace("Plotly.newPlot(s.id, s.data,", "Plotly.newPlot(s.id, s.id === 'plot-3' ? [] : s.data,")
    assert broken != page
    opened = Opened(browser, _write(tmp_path, "broken.html", broken))
    try:
        with pytest.raises(AssertionError, match=r"plot-3 \(completeness all\): no data marks"):
            _check_every_plot_rendered(opened)
    finally:
        opened.close()


def test_odd_results_render_without_errors(browser: Any, tmp_path: Path) -> None:
    """Nulls, strings where numbers go, series missing or short: what is drawn draws cleanly."""
    monitor = {"generated_at": "2026-11-30T06:00:00+00:00", "status": "OK", "checks": [
        {"check": "freshness", "view": "v", "scope": "online", "status": "OK", "value": 60.0,
         "unit": "seconds", "warn": None, "alert": None, "series": None},
        {"check": "psi", "view": "v", "feature": "f", "scope": "offline", "status": "OK", "value": 0.01,
         "series": {"edges": [], "baseline": [5, 5], "current": [4, 6]}},
        {"check": "latency", "scope": "server", "status": "OK", "value": None, "series": {"p50": None}},
    ]}
    audit = {"service": "s", "features": [{"feature": "v:f", "mismatch_rate": 0.5, "worst": []},
                                          {"feature": "v:g", "mismatch_rate": "x", "worst": []}]}
    opened = Opened(browser, _write(tmp_path, "odd.html", render_report(monitor, [audit])))
    try:
        plots = _check_every_plot_rendered(opened)
        assert sorted(p["kind"] for p in plots) == ["audit", "drift", "freshness", "histogram"]
    finally:
        opened.close()
