"""The monitoring report (docs/report.md): what the page says, that every data string is
escaped, that bad inputs are named, and ``skewless report`` / ``store.report`` (inputs from the
repo or the files given, an atomic write). The browser test (tests/e2e/test_report_browser.py)
checks that the plots render."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from skewless.cli.main import app
from skewless.errors import InvalidRequestError
from skewless.monitoring.report import fmt_value, render, render_report, validate_audit, validate_monitor
from skewless.monitoring.report_plots import bin_labels, completeness_plot, time_unit
from skewless.store import FeatureStore
from skewless.testing.monitoring_results import (HOSTILE, audit_result, monitor_history,
                                                 monitor_result)

runner = CliRunner()


def plot_kinds(page: str) -> list[str]:
    return re.findall(r'<div class="plot" id="plot-\d+" data-kind="(\w+)"', page)


def section(page: str, sid: str) -> str:
    start = page.index(f'<section id="{sid}">')
    return page[start:page.index("</section>", start)]


@pytest.fixture(scope="module")
def incident() -> Any:
    return render(monitor_result("incident"), [audit_result(incident=True, hostile=True)],
                  history=monitor_history("incident"))


@pytest.fixture(scope="module")
def healthy() -> Any:
    return render(monitor_result("healthy"), [audit_result(incident=False)])


# -- the page -------------------------------------------------------------------------------

def test_the_incident_page_has_every_plot_and_puts_the_alerts_first(incident: Any) -> None:
    page = incident.html
    assert incident.status == "ALERT" and incident.sections_empty == []
    assert incident.counts == {"ALERT": 7, "WARN": 6, "OK": 24}
    kinds = plot_kinds(page)
    assert {"freshness", "completeness", "drift", "histogram", "audit", "latency"} <= set(kinds)
    assert kinds.count("freshness") == 2 and kinds.count("histogram") == 10 and incident.plots == len(kinds)
    summary = section(page, "summary")
    badges = re.findall(r'<li><span class="badge (\w+)">', summary)
    assert badges == sorted(badges, key=["alert", "warn", "ok"].index) and badges[0] == "alert"
    assert "ok" not in badges                       # only what needs attention is listed
    assert "merchant_stats (online)" in summary and "merchant_category_risk_score: mismatch 37.12%" in summary
    assert "7 ALERT" in summary and "6 WARN" in summary and "24 OK" in summary


def test_the_page_needs_no_network(incident: Any) -> None:
    page = incident.html
    from plotly.offline import get_plotlyjs

    assert page.count(get_plotlyjs()) == 1                                # plotly.js inlined once
    ours = page.replace(get_plotlyjs(), "")
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|<img|https?://", ours)


def test_a_healthy_page_says_every_check_is_ok(healthy: Any) -> None:
    assert healthy.status == "OK" and healthy.counts == {"OK": 37}
    assert "Every check is OK." in section(healthy.html, "summary")
    assert "latency" in plot_kinds(healthy.html)


def test_sections_without_data_say_so_in_one_line() -> None:
    only_latency = monitor_result("healthy")
    only_latency["checks"] = [c for c in only_latency["checks"] if c["check"] == "latency"]
    r = render(only_latency, [])
    assert plot_kinds(r.html) == ["latency"]
    assert set(r.sections_empty) == {"freshness", "completeness", "drift", "histograms", "audit"}
    assert "No freshness check in the monitor result." in section(r.html, "freshness")
    assert "run <code>skewless audit --service NAME --since 1d</code>" in section(r.html, "audit")
    nothing = render(None, [])
    assert nothing.plots == 0 and "No monitor or audit result was given." in nothing.html


def test_an_audit_without_a_monitor_result_renders_alone() -> None:
    r = render(None, [audit_result(incident=True)])
    assert r.status == "ALERT" and plot_kinds(r.html) == ["audit"]
    assert "No monitor result was given" in section(r.html, "freshness")


def test_every_string_from_the_data_is_escaped() -> None:
    """An entity value, a served value and a feature name ``<script>alert(1)</script>`` appear
    as text: never as a tag in the HTML, nor as ``</script>`` in the plot specs."""
    monitor = monitor_result("incident", feature_prefix=HOSTILE)
    page = render_report(monitor, [audit_result(hostile=True)], title=HOSTILE)
    assert HOSTILE not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page                 # tables, title, summary
    specs = page[page.index('id="skewless-plots">'):]
    specs = specs[len('id="skewless-plots">'):specs.index("</script>")]
    assert "<" not in specs and ">" not in specs                           # JSON with \u003c escapes
    data = json.loads(specs)
    names = json.dumps(data)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in names                # plotly.js shows it as text


def test_history_adds_past_runs_to_freshness_and_latency(incident: Any, healthy: Any) -> None:
    assert plot_kinds(incident.html).count("latency") == 2                 # percentiles over the runs
    assert plot_kinds(healthy.html).count("latency") == 1
    assert incident.html.count("at each monitor run") >= 2                 # a trace per scope


def test_values_are_formatted_with_their_units() -> None:
    assert fmt_value(259_200.0, "seconds") == "3.0 d"
    assert fmt_value(0.0139, "seconds") == "13.9 ms"
    assert fmt_value(0.62, "ratio") == "62.00%"
    assert fmt_value(0.1234567, "psi") == "0.1235"
    assert fmt_value(None, "seconds") == "–"
    assert time_unit([0.4 * 3600, 3 * 86400]) == ("hours", 3600.0)
    assert time_unit([30, 90]) == ("seconds", 1.0)
    assert time_unit([3 * 86400, 5 * 86400]) == ("days", 86400.0)
    assert bin_labels([0, 1, 2.5], 2) == ["[0, 1)", "[1, 2.5]"]
    assert bin_labels([1, 2], 3) == ["< 1", "[1, 2)", "≥ 2"]
    assert bin_labels([1], 3) == ["bin 1", "bin 2", "bin 3"]


@pytest.mark.parametrize("bad, culprit", [
    ([], "is a JSON list, not an object"),
    ({"status": "OK"}, "has no 'checks' list"),
    ({"checks": [{"check": "psi"}]}, "checks[0] has no 'status'"),
    ({"checks": [{"check": "psi", "status": "RED"}]}, "checks[0] (psi) has status 'RED'"),
    ({"checks": [{"check": "psi", "status": "OK", "series": 3}]}, "checks[0] (psi) has a 'series'"),
    ({"status": "BOGUS", "checks": []}, "has status 'BOGUS'"),
])
def test_a_malformed_monitor_result_is_named(bad: Any, culprit: str) -> None:
    with pytest.raises(InvalidRequestError, match=re.escape(culprit)) as e:
        validate_monitor(bad, "m.json")
    assert str(e.value.message).startswith("m.json") and "skewless monitor --json" in str(e.value.hint)


@pytest.mark.parametrize("mutate, culprit", [
    (lambda a: a.pop("features"), "has no 'features'"),
    (lambda a: a["features"].__setitem__(0, {"compared": 1}), "features[0] is not an object with a 'feature'"),
    (lambda a: a["features"][1].__setitem__("worst", "x"), "features[1] (merchant_stats:txn_count_1d)"),
])
def test_a_malformed_audit_result_is_named(mutate: Any, culprit: str) -> None:
    audit = copy.deepcopy(audit_result())
    audit["features"].sort(key=lambda f: f["feature"])
    mutate(audit)
    with pytest.raises(InvalidRequestError, match=re.escape(culprit)):
        validate_audit(audit, "a.json")


# -- skewless report and store.report -------------------------------------------------------

@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "feature_store.yaml").write_text("project: rep\nregistry: data/registry.db\n")
    return root


def monitored(repo: Path) -> Path:
    """The files ``skewless monitor`` and ``skewless audit`` leave in a repo."""
    mon = repo / "data" / "monitoring"
    (mon / "audit").mkdir(parents=True)
    (mon / "last.json").write_text(json.dumps(monitor_result("incident")))
    (mon / "history.jsonl").write_text(
        "".join(json.dumps(h) + "\n" for h in monitor_history("incident")) + '{"torn": \n')
    (mon / "audit" / "fraud_model_v1.json").write_text(json.dumps(audit_result()))
    return mon


def cli(repo: Path, *args: str) -> Any:
    result = runner.invoke(app, ["--repo", str(repo), "report", *args], env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_without_a_monitor_run_the_error_names_the_file_and_the_command(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = cli(repo, "--out", str(out))
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "data/monitoring/last.json does not exist" in text and "run `skewless monitor`" in text
    assert not out.exists()


def test_the_report_reads_the_repo_files_by_default(repo: Path, tmp_path: Path) -> None:
    monitored(repo)
    out = tmp_path / "sub" / "report.html"
    result = cli(repo, "--out", str(out))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "status ALERT" in text and "7 ALERT · 6 WARN · 24 OK" in text
    assert "history.jsonl line 8 skipped (not JSON)" in text
    page = out.read_text()
    assert "latency" in plot_kinds(page) and plot_kinds(page).count("latency") == 2    # history read
    assert "audit" in plot_kinds(page) and "history.jsonl line 8 skipped" in page
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]                   # no temp file left


def test_explicit_files_replace_the_repo_files(repo: Path, tmp_path: Path) -> None:
    monitored(repo)
    healthy = tmp_path / "healthy.json"
    healthy.write_text(json.dumps(monitor_result("healthy")))
    audits = [tmp_path / "a1.json", tmp_path / "a2.json"]
    audits[0].write_text(json.dumps(audit_result(incident=False)))
    audits[1].write_text(json.dumps(audit_result(incident=False, seed=3)))
    out = tmp_path / "r.html"
    result = cli(repo, "--out", str(out), "--monitor-json", str(healthy),
                 "--audit-json", str(audits[0]), "--audit-json", str(audits[1]))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "status OK" in " ".join(result.output.split())
    assert plot_kinds(page).count("audit") == 2 and plot_kinds(page).count("latency") == 1   # no history


def test_a_bad_input_file_is_named_and_the_old_report_stays(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("the previous report")
    bad = tmp_path / "bad.json"
    bad.write_text('{"checks": [')
    result = cli(repo, "--out", str(out), "--monitor-json", str(bad))
    assert result.exit_code == 1
    assert f"monitor result {bad} is not JSON (line 1" in " ".join(result.output.split())
    missing = cli(repo, "--out", str(out), "--audit-json", str(tmp_path / "nope.json"))
    assert missing.exit_code == 1 and "nope.json does not exist" in " ".join(missing.output.split())
    assert out.read_text() == "the previous report"
    assert cli(repo, "--out", str(tmp_path), "--audit-json", str(tmp_path / "x.json")).exit_code == 1


def test_store_report_takes_dicts(repo: Path, tmp_path: Path) -> None:
    written = FeatureStore(repo).report(tmp_path / "r.html", monitor=monitor_result("healthy"),
                                        audits=[audit_result(incident=True)])
    assert written.status == "ALERT" and written.counts == {"OK": 37}
    assert written.inputs == ["<monitor dict>", "<audit dict #1>"]
    assert written.size_bytes == (tmp_path / "r.html").stat().st_size and written.plots >= 10
    with pytest.raises(InvalidRequestError, match="audit result #1"):
        FeatureStore(repo).report(tmp_path / "r2.html", audits=[{"service": "s"}])
    assert not (tmp_path / "r2.html").exists()


def test_threshold_labels_read_in_the_unit_of_their_size() -> None:
    from skewless.monitoring.report_plots import human_seconds

    assert [human_seconds(v) for v in (108_000, 2_592_000, 86_400, 900, 45, 0.25)] == \
        ["30 h", "30 d", "24 h", "15 min", "45 s", "250 ms"]


def test_past_the_limit_only_the_histograms_that_need_attention_are_drawn() -> None:
    from skewless.monitoring.report_plots import histogram_plots

    checks = monitor_result("incident")["checks"]
    plots, left_out = histogram_plots(checks, limit=3)
    assert len(plots) == 4 and left_out == 6          # 2 ALERT + 2 WARN pairs, 6 OK ones left out
    assert [p.key for p in plots[:2]] == ["merchant_stats:merchant_category_risk_score (offline)",
                                          "merchant_stats:merchant_category_risk_score (log)"]
    page = render(monitor_result("incident"), []).html
    assert "more feature(s), all OK" not in page                     # 10 drawn: under the limit


def test_odd_but_valid_results_render() -> None:
    """Missing optional keys, nulls, strings where numbers go and empty series: the page
    renders, drawing what it can."""
    monitor = {"generated_at": "2026-11-30T06:00:00+00:00", "status": "WARN", "checks": [
        {"check": "freshness", "status": "WARN", "value": "n/a", "series": []},
        {"check": "freshness", "view": "v", "scope": "online", "status": "OK", "value": 60.0,
         "unit": "seconds", "warn": None, "alert": None, "series": None},
        {"check": "completeness", "view": "v", "feature": "f", "scope": "offline", "status": "OK",
         "value": None, "series": [{"date": "2026-11-30", "non_null": None}]},
        {"check": "psi", "view": "v", "feature": "f", "scope": "offline", "status": "OK", "value": 0.01,
         "series": {"edges": [], "baseline": [5, 5], "current": [4, 6]}},
        {"check": "ks", "view": "v", "feature": "g", "scope": "log", "status": "OK", "value": float("nan"),
         "series": {"edges": [0, 1], "baseline": [], "current": []}},
        {"check": "latency", "scope": "server", "status": "OK", "value": None, "series": {"p50": None}},
        {"check": "materialization", "view": "v", "status": "OK"},
    ]}
    audit = {"service": "s", "features": [{"feature": "v:f", "mismatch_rate": "x", "worst": []}]}
    r = render(monitor, [audit])
    assert r.status == "WARN"
    assert set(plot_kinds(r.html)) == {"freshness", "drift", "histogram", "audit"}   # no percentile


def test_a_day_without_data_is_a_blank_cell_not_a_bare_percent_sign() -> None:
    # a weekly view has a value one day in seven; the daily views' days are blank for it
    checks = [{"check": "completeness", "view": "weekly", "feature": "a", "scope": "offline",
               "series": [{"date": "2026-01-01", "non_null": 1.0}]},
              {"check": "completeness", "view": "daily", "feature": "b", "scope": "offline",
               "series": [{"date": "2026-01-01", "non_null": 0.5},
                          {"date": "2026-01-02", "non_null": 0.75}]}]
    [plot] = completeness_plot(checks)
    heat = plot.figure["data"][0]
    assert heat["texttemplate"] == "%{text}"
    rows = dict(zip(heat["y"], heat["text"]))
    assert rows == {"weekly:a (offline)": ["0.0%", ""], "daily:b (offline)": ["50.0%", "25.0%"]}
