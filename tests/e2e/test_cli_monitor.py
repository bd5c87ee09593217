"""``skewless monitor`` end to end: the table, ``--json``, the exit status, and alerts posted to
a webhook with retries and a timeout, against real local HTTP servers: one that never answers
(the command still returns in time) and one that fails twice, then accepts."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skewless.cli.main import app
from tests.integration.test_monitor import make_repo, open_store

runner = CliRunner()


def run(repo: Path, *args: str):
    return runner.invoke(app, ["monitor", "--repo", str(repo), *args], catch_exceptions=False)


def test_healthy_repo_exits_0_and_writes_json(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    open_store(repo).materialize_incremental()
    out = tmp_path / "out" / "monitor.json"
    result = run(repo, "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "status: OK" in result.output and "0 warn, 0 alert" in result.output
    data = json.loads(out.read_text())
    assert data["status"] == "OK" and data["checks"]


def test_alert_exits_1(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, shift=1.0)
    open_store(repo)
    result = run(repo, "--view", "txn_stats", "--quiet")
    assert result.exit_code == 1, result.output
    assert "status: ALERT" in result.output


def test_unknown_view_is_a_clear_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, days=1)
    open_store(repo)
    result = run(repo, "--view", "nope")
    assert result.exit_code == 1
    assert "feature view 'nope' is not registered" in result.output


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and reads, but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                conns.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook", conns
    stop.set()
    t.join(5)
    for c in conns:
        c.close()
    sock.close()


def test_a_webhook_that_never_answers_does_not_hang_the_monitor(tmp_path: Path, silent_server) -> None:
    url, conns = silent_server
    timeout, retries = 1.0, 2
    repo = make_repo(tmp_path, shift=1.0, monitoring={
        "webhook_timeout_seconds": timeout, "webhook_retries": retries})
    open_store(repo)
    t0 = time.monotonic()
    result = run(repo, "--webhook", url, "--quiet")
    took = time.monotonic() - t0
    assert result.exit_code == 1   # the ALERT's status, webhook or not
    assert "failed after 3 attempt(s)" in result.output
    assert len(conns) == retries + 1
    # timeout * (retries + 1) plus the backoff and the monitor run itself, with a margin for a
    # loaded machine: what matters is that it returns, not how fast
    assert took < timeout * (retries + 1) + 30


class _Flaky(BaseHTTPRequestHandler):
    fails = 2
    received: list[dict] = []

    def do_POST(self) -> None:   # noqa: N802 - http.server's spelling
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        ok = len(type(self).received) > type(self).fails
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_webhook_that_fails_twice_then_accepts_gets_the_alerts(tmp_path: Path) -> None:
    _Flaky.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        repo = make_repo(tmp_path, shift=1.0, monitoring={
            "webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook",
            "webhook_retries": 2, "webhook_timeout_seconds": 10})
        open_store(repo)
        result = run(repo, "--quiet")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    assert "posted to" in result.output and "(attempt 3)" in result.output
    assert len(_Flaky.received) == 3
    payload = _Flaky.received[-1]
    assert payload["project"] == "mon" and payload["status"] == "ALERT"
    assert {(a["check"], a["feature"]) for a in payload["alerts"]} >= {("psi", "amount"), ("ks", "amount")}
    assert all(a["status"] == "ALERT" and "series" not in a for a in payload["alerts"])


def test_no_alert_posts_nothing(tmp_path: Path) -> None:
    _Flaky.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        repo = make_repo(tmp_path)
        open_store(repo).materialize_incremental()
        result = run(repo, "--quiet", "--webhook", f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    assert _Flaky.received == []
