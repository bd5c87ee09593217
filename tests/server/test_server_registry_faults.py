"""The feature server with its registry on a faulty disk (a tmpfs the test mounts, fills,
remounts read-only and unmounts) while Redis is healthy: requests keep answering, ``/ready``
and ``/metrics`` say how the registry stands (docs/server.md#get-ready-and-get-health)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from skewless import FeatureStore
from skewless.testing.redis_server import SHARED_REDIS, purge_project, require_shared_redis

from ..integration.test_registry_disk_faults import fill, garble, remount_ro, tmpfs
from .conftest import definitions, make_repo

BODY = {"features": ["user_spend:amount"], "entities": {"user_id": ["u1", "u2", "u9"]}}
AMOUNTS = [140.0, 89.0, None]


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A repo (on the ordinary disk) whose registry is on a 4 MB tmpfs; Redis online."""
    require_shared_redis(SHARED_REDIS)
    project = "srvreg" + uuid.uuid4().hex[:10]
    with tmpfs(tmp_path / "mnt") as mount:
        registry = mount / "registry.db"
        repo = make_repo(tmp_path / "repo", project=project,
                         online={"type": "redis", "connection_string": SHARED_REDIS},
                         registry_cache_ttl_seconds=0.2)
        config = yaml.safe_load((repo / "feature_store.yaml").read_text())
        config["registry"] = str(registry)
        (repo / "feature_store.yaml").write_text(yaml.safe_dump(config))
        fs = FeatureStore(repo)
        fs.apply(definitions())
        fs.materialize_incremental()
        fs.online_store.close()
        try:
            yield repo, mount
        finally:
            purge_project(project, SHARED_REDIS)


def amounts(server: Any) -> list[Any]:
    r = server.post("/get-online-features", BODY)
    assert r.status_code == 200, r.text
    return r.json()["results"][1]["values"]


def metric(server: Any, name: str) -> float:
    text = server.get("/metrics").text
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def poll(check: Any, deadline_s: float = 30.0) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_server_on_a_full_then_read_only_disk(repo: tuple[Path, Path], serve: Any) -> None:
    root, mount = repo
    server = serve(root)
    assert server.get("/ready").status_code == 200
    fill(mount)
    time.sleep(0.5)   # past registry_cache_ttl_seconds: every request re-reads the registry
    for _ in range(20):
        assert amounts(server) == AMOUNTS
    ready = server.get("/ready")
    assert ready.status_code == 200 and ready.json()["registry"] == "ok", ready.text
    assert metric(server, "skewless_registry_stale") == 0
    remount_ro(mount)
    time.sleep(0.5)
    for _ in range(20):
        assert amounts(server) == AMOUNTS
    assert server.get("/ready").json()["registry"] == "ok"
    # a server started on the read-only filesystem serves too
    other = serve(root)
    assert amounts(other) == AMOUNTS
    assert other.get("/ready").status_code == 200


def test_server_keeps_its_last_good_snapshot(repo: tuple[Path, Path], serve: Any) -> None:
    root, mount = repo
    server = serve(root)
    assert server.get("/ready").status_code == 200
    assert amounts(server) == AMOUNTS
    read_at = metric(server, "skewless_registry_read_timestamp_seconds")
    assert abs(read_at - time.time()) < 60
    garble(mount / "registry.db")
    time.sleep(0.5)
    for _ in range(20):
        assert amounts(server) == AMOUNTS

    def stale() -> dict[str, Any]:
        r = server.get("/ready")
        body = r.json()
        assert r.status_code == 200 and body["registry"] == "stale", r.text
        return body
    body = poll(stale)
    assert body["ready"] is True and body["registry_error"]["code"] == "registry_unavailable"
    assert "corrupt" in body["registry_error"]["message"] and str(mount) in body["registry_error"]["message"]
    assert body["registry_snapshot_age_seconds"] >= 0.3
    assert "move the file aside" in body["hint"]
    assert metric(server, "skewless_registry_stale") == 1
    assert metric(server, "skewless_registry_read_timestamp_seconds") <= time.time() - 0.3
    # a push checks the registry as it is: refused, clearly
    r = server.post("/push", {"push_source_name": "nope", "df": {"user_id": ["u1"]}})
    assert r.status_code == 503 and r.json()["code"] == "registry_unavailable", r.text
    # a server started now has no good snapshot: not ready, and says why
    fresh = serve(root)
    r = fresh.get("/ready")
    assert r.status_code == 503 and r.json()["registry"] == "unreadable", r.text
    assert "corrupt" in r.json()["message"]
    r = fresh.post("/get-online-features", BODY)
    assert r.status_code == 503 and "corrupt" in r.json()["message"], r.text
