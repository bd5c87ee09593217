"""Where monitor results go: ``data/monitoring/last.json`` (atomically replaced, read by the
server's ``/metrics`` and ``skewless report``), one line per run in
``data/monitoring/history.jsonl``, a ``--json`` file, and a webhook (docs/monitoring.md).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MONITORING_DIR = "data/monitoring"   # relative to the repo (RepoConfig.resolve)
LAST = "last.json"
HISTORY = "history.jsonl"
AUDITS = "audit"                     # one ``<service>.json`` per audited feature service


def audit_path(monitoring_dir: Path, service: str) -> Path:
    """Where each audit run of ``service`` leaves its JSON (read by the server and the report)."""
    return monitoring_dir / AUDITS / f"{service}.json"


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same folder and a
    rename: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp (0600): the umask's permissions, as any file the user writes, so that a
    # feature server running as another user can export the result
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "x") as f:
            json.dump(data, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def record(data: dict[str, Any], monitoring_dir: Path) -> Path:
    """``data`` (``MonitorReport.to_dict()``) as ``last.json`` and one more line of
    ``history.jsonl`` under ``monitoring_dir``; returns the path of ``last.json``."""
    last = monitoring_dir / LAST
    write_json_atomic(last, data)
    line = json.dumps(data, default=str, separators=(",", ":")) + "\n"
    with open(monitoring_dir / HISTORY, "a") as f:   # one write of one line: O_APPEND
        f.write(line)
    return last


@dataclass
class Delivery:
    """How a webhook POST went: ``ok``, the attempts made, the last error (None when ok)."""

    url: str
    ok: bool
    attempts: int
    error: str | None = None
    statuses: list[int] = field(default_factory=list)


def post_alerts(url: str, payload: dict[str, Any], timeout: float, retries: int,
                backoff: float = 0.2) -> Delivery:
    """POST ``payload`` as JSON to ``url``: at most ``retries + 1`` attempts, each bounded by
    ``timeout`` seconds (connect, send and answer alike: httpx's timeouts, plus a deadline per
    attempt), ``backoff * attempt`` seconds apart; a 2xx answer ends it. Retried: connection
    errors, timeouts and 5xx / 429 answers; a 4xx is final. Never raises and never hangs: the
    whole takes at most about ``timeout * (retries + 1) + backoff * retries * (retries + 1) / 2``."""
    import httpx

    statuses: list[int] = []
    error: str | None = None
    for attempt in range(1, retries + 2):
        started = time.monotonic()
        try:
            with httpx.Client(timeout=httpx.Timeout(timeout)) as client:
                with client.stream("POST", url, json=payload) as resp:
                    # the body too, within the attempt's deadline
                    for _ in resp.iter_bytes():
                        if time.monotonic() - started > timeout:
                            raise httpx.ReadTimeout("answer body too slow", request=resp.request)
                    statuses.append(resp.status_code)
                    if 200 <= resp.status_code < 300:
                        return Delivery(url, True, attempt, None, statuses)
                    error = f"HTTP {resp.status_code}"
                    if 400 <= resp.status_code < 500 and resp.status_code != 429:
                        return Delivery(url, False, attempt, error, statuses)
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        except OSError as e:   # e.g. a URL httpx cannot even open a socket for
            error = f"{type(e).__name__}: {e}"
        if attempt <= retries:
            time.sleep(backoff * attempt)
    return Delivery(url, False, retries + 1, error, statuses)


def alert_payload(data: dict[str, Any], project: str) -> dict[str, Any]:
    """What a webhook gets: the project, the run's time and status, and its ALERT checks
    (without their series)."""
    alerts = [{k: v for k, v in c.items() if k != "series"}
              for c in data.get("checks", []) if c.get("status") == "ALERT"]
    return {"project": project, "generated_at": data.get("generated_at"),
            "status": data.get("status"), "alerts": alerts}
