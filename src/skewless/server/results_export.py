"""The monitor and audit results as Prometheus gauges in the server's ``GET /metrics``
(docs/monitoring.md, "Prometheus"; docs/server.md).

Read on scrape from the files the runs write, never computed here: ``skewless monitor``'s
``data/monitoring/last.json`` and each ``skewless audit``'s ``data/monitoring/audit/<service>.json``.
Each file is parsed again only when its modification time or size changes. A missing,
unreadable or malformed file exports nothing and is not an error: it is logged once (per file
and problem).

- ``skewless_monitor_status{check,view,feature,scope}``: 0 OK, 1 WARN, 2 ALERT
- ``skewless_monitor_value{check,view,feature,scope}``: the checked figure (seconds, share,
  PSI, KS), for the checks that measured one
- ``skewless_monitor_generated_timestamp_seconds``: Unix time of the monitor run exported
- ``skewless_audit_mismatch_rate{service,feature}``, ``skewless_audit_missing_online_rate``,
  ``skewless_audit_missing_offline_rate``: per audited feature
- ``skewless_audit_rows{service}``: logged rows the audit replayed;
  ``skewless_audit_generated_timestamp_seconds{service}``: its ``until``
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from skewless.monitoring import results

log = logging.getLogger("skewless.server")
STATUS = {"OK": 0, "WARN": 1, "ALERT": 2}
#: every family this module may export (a family with no sample is left out)
NAMES = ("skewless_monitor_status", "skewless_monitor_value",
         "skewless_monitor_generated_timestamp_seconds", "skewless_audit_mismatch_rate",
         "skewless_audit_missing_online_rate", "skewless_audit_missing_offline_rate",
         "skewless_audit_rows", "skewless_audit_generated_timestamp_seconds")


class _JsonFile:
    """One results file, parsed again only when its (mtime, size) changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: tuple[int, int] | None = None
        self._data: dict[str, Any] | None = None

    def read(self, logged: set[tuple[str, str]]) -> dict[str, Any] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._key, self._data = None, None
            return None
        except OSError as e:
            _once(logged, self.path, f"cannot stat: {e}")
            return None
        key = (st.st_mtime_ns, st.st_size)
        if key == self._key:
            return self._data
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                raise ValueError(f"a JSON {type(data).__name__}, not an object")
        except (OSError, ValueError) as e:
            _once(logged, self.path, f"not exported: {type(e).__name__}: {e}")
            data = None
        self._key, self._data = key, data
        return data


def _once(logged: set[tuple[str, str]], path: Path, problem: str) -> None:
    if (str(path), problem) not in logged:
        logged.add((str(path), problem))
        log.warning("%s: %s", path, problem)


def _unix(iso: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class ResultsCollector(Collector):
    """A prometheus-client collector over ``<repo>/data/monitoring`` (module docstring)."""

    def __init__(self, monitoring_dir: Path) -> None:
        self.dir = monitoring_dir
        self._last = _JsonFile(monitoring_dir / "last.json")
        self._audits: dict[Path, _JsonFile] = {}
        self._logged: set[tuple[str, str]] = set()

    def collect(self) -> Iterator[Metric]:
        for family in (*self._monitor(), *self._audit()):
            if family.samples:
                yield family

    def _monitor(self) -> Iterator[Metric]:
        labels = ["check", "view", "feature", "scope"]
        status = GaugeMetricFamily("skewless_monitor_status",
                                   "Last `skewless monitor` run: 0 OK, 1 WARN, 2 ALERT per check.",
                                   labels=labels)
        value = GaugeMetricFamily("skewless_monitor_value",
                                  "Last `skewless monitor` run: the figure each check measured "
                                  "(seconds, share, PSI or KS).", labels=labels)
        when = GaugeMetricFamily("skewless_monitor_generated_timestamp_seconds",
                                 "Unix time of the `skewless monitor` run exported.")
        data = self._last.read(self._logged)
        if data is not None:
            seen: dict[tuple[str, ...], dict[str, Any]] = {}
            for c in data.get("checks") or []:
                if isinstance(c, dict) and c.get("status") in STATUS:
                    key = tuple(str(c.get(k) or "") for k in labels)
                    seen[key] = c
            for key, c in seen.items():
                status.add_metric(list(key), STATUS[c["status"]])
                v = _float(c.get("value"))
                if v is not None:
                    value.add_metric(list(key), v)
            t = _unix(data.get("generated_at"))
            if t is not None:
                when.add_metric([], t)
        yield from (status, value, when)

    def _audit(self) -> Iterator[Metric]:
        fl = ["service", "feature"]
        rates = {k: GaugeMetricFamily(f"skewless_audit_{k}", f"Last `skewless audit` of the "
                                      f"service: {k.replace('_', ' ')} per feature.", labels=fl)
                 for k in ("mismatch_rate", "missing_online_rate", "missing_offline_rate")}
        rows = GaugeMetricFamily("skewless_audit_rows", "Last `skewless audit` of the service: "
                                 "logged rows replayed.", labels=["service"])
        when = GaugeMetricFamily("skewless_audit_generated_timestamp_seconds",
                                 "Last `skewless audit` of the service: the end of its window "
                                 "(Unix time).", labels=["service"])
        folder = self.dir / results.AUDITS
        try:
            paths = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
        except OSError:
            paths = []
        self._audits = {p: self._audits.get(p) or _JsonFile(p) for p in paths}
        for path, f in self._audits.items():
            data = f.read(self._logged)
            if data is None:
                continue
            service = str(data.get("service") or path.stem)
            n = _float(data.get("rows"))
            if n is not None:
                rows.add_metric([service], n)
            t = _unix(data.get("until"))
            if t is not None:
                when.add_metric([service], t)
            for feat in data.get("features") or []:
                if not isinstance(feat, dict):
                    continue
                for k, g in rates.items():
                    v = _float(feat.get(k))
                    if v is not None:
                        g.add_metric([service, str(feat.get("feature"))], v)
        yield from (*rates.values(), rows, when)
