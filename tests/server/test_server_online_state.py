"""The feature server holds a cached registry snapshot: after a view is deleted and re-created
with another type, it never serves a record written under the old definition (docs/online.md,
"Online state follows the registry")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
from skewless.types import Int64, String

from .conftest import make_repo

GET = "/get-online-features"
user = Entity("user", join_keys=["user_id"])


def source(repo: Path, x: pa.Array) -> None:
    ts = datetime.now(timezone.utc) - timedelta(hours=1)
    pq.write_table(pa.table({"user_id": pa.array([1], pa.int64()),
                             "ts": pa.array([ts], pa.timestamp("us", "UTC")), "x": x}),
                   repo / "data" / "v.parquet")


def view(dtype: object) -> FeatureView:
    return FeatureView("v", entities=[user], schema=[Field("x", dtype)],  # type: ignore[arg-type]
                       source=FileSource("data/v.parquet", "ts"))


def test_a_server_with_a_cached_registry_never_serves_the_old_definitions_records(tmp_path: Path, serve) -> None:
    repo = make_repo(tmp_path / "repo", project="srvstate",
                     online={"type": "sqlite", "path": "data/online.db"}, registry_cache_ttl_seconds=3600)
    source(repo, pa.array([300], pa.int64()))
    fs = FeatureStore(repo)
    fs.apply([user, view(Int64)])
    fs.materialize_incremental()
    server = serve(repo)
    body = {"features": ["v:x"], "entities": {"user_id": [1]}}
    before = server.post(GET, body).json()
    assert before["results"][1]["values"] == [300]
    assert before["metadata"]["feature_types"] == [None, "Int64"]

    fs.apply([], objects_to_delete=[view(Int64)])
    source(repo, pa.array(["x300"]))
    fs.apply([user, view(String)])
    fs.materialize_incremental()
    stale = server.post(GET, body).json()   # its registry snapshot is an hour from expiring
    assert stale["results"][1]["values"] == [None]
    assert stale["results"][1]["statuses"] == ["NOT_FOUND"]

    fresh = serve(repo).post(GET, body).json()
    assert fresh["results"][1]["values"] == ["x300"]
    assert fresh["metadata"]["feature_types"] == [None, "String"]
