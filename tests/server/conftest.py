"""The feature server as the user runs it: ``skewless serve`` in a subprocess on a free port,
over a real repo (SQLite, or Redis), stopped by its pid. No mocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from skewless import FeatureService, FeatureStore
from skewless.testing.redis_server import free_port

from ..integration.conftest import pair, pair_view, spend_view, user, write_data

SERVICE = "fraud_v1"


def definitions() -> list[Any]:
    return [user, pair, spend_view(), pair_view(),
            FeatureService(SERVICE, [spend_view()[["amount"]], pair_view()])]


def make_repo(path: Path, project: str = "srv", online: dict[str, Any] | None = None,
              **extra: Any) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"project": project, "registry": "data/registry.db", **extra}
    if online is not None:
        config["online_store"] = online
    (path / "feature_store.yaml").write_text(yaml.safe_dump(config))
    write_data(path)
    return path


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=kw.pop("timeout", 10), **kw)

    def post(self, path: str, body: Any = None, content: bytes | None = None, **kw: Any) -> httpx.Response:
        if content is None:
            return httpx.post(self.url + path, json=body, timeout=kw.pop("timeout", 10), **kw)
        return httpx.post(self.url + path, content=content, timeout=kw.pop("timeout", 10), **kw)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts its workers down), SIGKILL if that takes too long."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(repo: Path, workers: int = 1, timeout: float = 60.0) -> Server:
    """``skewless --repo REPO serve`` on a free port; returns once /health answers."""
    port = free_port()
    log = repo / f"server-{port}.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SKEWLESS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skewless.cli", "--repo", str(repo), "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"skewless serve exited with {proc.returncode}:\n{server.output()}")
        try:
            if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"skewless serve did not answer within {timeout} s:\n{server.output()}")
        time.sleep(0.1)


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start servers for a test; every one is stopped (by pid) afterwards."""
    started: list[Server] = []

    def start(repo: Path, workers: int = 1) -> Server:
        s = start_server(repo, workers)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def sqlite_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A materialized SQLite repo: the worked example of docs/point-in-time.md plus a composite-key view."""
    repo = make_repo(tmp_path_factory.mktemp("srv") / "repo")
    fs = FeatureStore(repo)
    fs.apply(definitions())
    fs.materialize_incremental()
    return repo


@pytest.fixture(scope="module")
def sqlite_server(sqlite_repo: Path) -> Iterator[Server]:
    server = start_server(sqlite_repo)
    yield server
    server.stop()


def unique_project() -> str:
    return "srv" + uuid.uuid4().hex[:10]


# --- comparing the server's JSON with the SDK's OnlineResponse -----------------------------
def iso(ts: Any) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


def expected_json(resp: Any) -> dict[str, Any]:
    """What the server must answer for the SDK's OnlineResponse ``resp`` (types aside)."""
    keys, values = resp.keys, resp.values
    n = len(next(iter(keys.values())))
    names = list(keys) + list(values)
    results = [{"values": col, "statuses": ["PRESENT"] * n,
                "event_timestamps": ["1970-01-01T00:00:00Z"] * n} for col in keys.values()]
    stamps = resp.event_timestamps
    for name, col in values.items():
        results.append({"values": col, "statuses": resp.statuses[name],
                        "event_timestamps": [iso(t) for t in stamps[name]]})
    return {"feature_names": names, "results": results}


def assert_same(body: dict[str, Any], resp: Any) -> None:
    want = expected_json(resp)
    assert body["metadata"]["feature_names"] == want["feature_names"]
    assert body["results"] == want["results"]
