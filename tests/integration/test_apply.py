"""plan / apply: validation gathers every problem, breaking changes are refused, nothing half-written."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from skewless import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from skewless.errors import BreakingChangeError, PlanError, RegistryConflictError
from skewless.types import Float32, Float64, Int64, String

from .conftest import pair, pair_view, spend_view, user


def _fs(repo):
    return FeatureStore(repo)


def _registry_bytes(repo):
    p = repo / "data/registry.db"
    return p.read_bytes() if p.exists() else None


def test_plan_writes_nothing_and_shows_the_diff(repo):
    fs = _fs(repo)
    result = fs.plan([user, spend_view()])
    assert [(c.op, c.kind, c.name) for c in result.changes] == [
        ("create", "entity", "user"), ("create", "feature_view", "user_spend")]
    assert "2 to create" in result.render()
    assert not (repo / "data/registry.db").exists()


def test_apply_then_update_and_history(repo):
    fs = _fs(repo)
    assert fs.apply([user, spend_view()]).version == 1
    grown = spend_view(schema=[Field("amount", Float64), Field("n_txn", Int64)], description="spend")
    res = fs.apply([grown])
    assert res.version == 2 and not res.breaking
    assert fs.apply([grown]).version == 2  # no change, no new version
    h = fs.history()
    assert [e.version for e in h] == [2, 1]
    assert h[0].changes[0]["op"] == "update" and h[1].changes[0]["op"] == "create"
    assert fs.get_feature_view("user_spend").description == "spend"


def test_adding_a_field_is_safe(repo):
    fs = _fs(repo)
    fs.apply([user, spend_view(schema=[Field("amount", Float64)])])
    res = fs.apply([spend_view()])
    assert not res.breaking and "field 'n_txn' added (Int64)" in res.render()


@pytest.mark.parametrize("new_schema,what", [
    ([Field("amount", Float64)], "field 'n_txn' removed"),
    ([Field("amount", Float32), Field("n_txn", Int64)], "field 'amount' retyped Float64 -> Float32"),
    ([Field("amount", Float64), Field("txn_count", Int64)], "field 'n_txn' renamed to 'txn_count'"),
])
def test_breaking_changes_are_refused_and_nothing_changes(repo, new_schema, what):
    fs = _fs(repo)
    data = pd.read_parquet(repo / "data/spend.parquet")
    data.assign(txn_count=1, amount=data.amount.astype("float32")).to_parquet(repo / "data/spend.parquet")
    fs.apply([user, spend_view()])
    before = _registry_bytes(repo)
    with pytest.raises(BreakingChangeError) as e:
        fs.apply([spend_view(schema=new_schema)])
    assert what in str(e.value)
    assert "user_spend_v2" in str(e.value) and "--force" in str(e.value)
    assert _registry_bytes(repo) == before
    assert fs.snapshot().version == 1
    assert fs.apply([spend_view(schema=new_schema)], force=True).version == 2


def test_changing_entities_is_breaking(repo):
    fs = _fs(repo)
    fs.apply([user, pair, spend_view()])
    other = Entity("customer", join_keys=["user_id"])
    with pytest.raises(BreakingChangeError, match="entities changed"):
        fs.apply([other, spend_view(entities=[other])])


def test_plan_gathers_every_problem(repo):
    fs = _fs(repo)
    bad_src = FeatureView("missing_file", [user], [Field("x", Float64)], FileSource("data/nope.parquet", "ts"))
    bad_cols = FeatureView("bad_cols", [user], [Field("amount", String), Field("ghost", Float64)],
                           FileSource("data/spend.parquet", "ts"))
    bad_ent = FeatureView("bad_ent", ["usr"], [Field("x", Float64)], FileSource("data/spend.parquet", "ts"))
    svc = FeatureService("svc", [FeatureView("not_applied", [user], [Field("amount", Float64)],
                                             FileSource("data/spend.parquet", "ts"))])
    with pytest.raises(PlanError) as e:
        fs.plan([user, bad_src, bad_cols, bad_ent, svc])
    msg = str(e.value)
    assert "data/nope.parquet does not exist" in msg
    assert "column(s) ['ghost'] are missing" in msg
    assert "column 'amount' has type double, but feature 'amount' is declared String" in msg
    assert "entity 'usr' is unknown; did you mean 'user'" in msg
    assert "feature view 'not_applied' is unknown" in msg
    assert len(e.value.problems) == 5
    assert not (repo / "data/registry.db").exists()


def test_wrong_timestamp_column_type(repo):
    fs = _fs(repo)
    view = FeatureView("v", [user], [Field("amount", Float64)], FileSource("data/spend.parquet", "n_txn"))
    with pytest.raises(PlanError, match="timestamp_field column 'n_txn' has type int64, expected a timestamp"):
        fs.plan([user, view])


def test_duplicate_names_are_refused(repo):
    fs = _fs(repo)
    with pytest.raises(PlanError, match="two different feature views are named 'user_spend'"):
        fs.plan([user, spend_view(), spend_view(ttl=60)])
    with pytest.raises(PlanError, match="both a feature view and a feature service"):
        fs.plan([user, spend_view(), FeatureService("user_spend", [spend_view()])])


def test_sync_deletes_what_is_gone(repo):
    fs = _fs(repo)
    fs.apply([user, pair, spend_view(), pair_view()])
    res = fs.apply([user, spend_view()], partial=False)
    assert {(c.op, c.name) for c in res.changes} == {("delete", "pair_stats"), ("delete", "user_merchant")}
    assert [v.name for v in fs.list_feature_views()] == ["user_spend"]


def test_concurrent_applies_never_lose_an_update(repo):
    a, b = _fs(repo), _fs(repo)
    a.apply([user, spend_view()])
    # Both read version 1, A commits first: B must get a conflict, not overwrite A.
    from skewless.services import apply as svc
    plan_b = svc.plan(b.context, [pair, pair_view()])
    a.apply([spend_view(description="from A")])
    with pytest.raises(RegistryConflictError, match="expected version 1, found 2"):
        b.registry.commit(plan_b.target, plan_b.current.version, plan_b.changes, "b")
    # The retry sees A's change and keeps it.
    b.apply([pair, pair_view()])
    snap = b.snapshot()
    assert snap.feature_views["user_spend"].description == "from A" and "pair_stats" in snap.feature_views


def test_racing_threads_all_land(repo):
    _fs(repo).apply([user, spend_view()])
    errors, done = [], []

    def worker(i: int) -> None:
        fs = _fs(repo)
        view = FeatureView(f"v{i}", [user], [Field("amount", Float64)], FileSource("data/spend.parquet", "ts"))
        for _ in range(20):
            try:
                fs.apply([view])
                done.append(i)
                return
            except RegistryConflictError:
                continue
            except Exception as e:  # noqa: BLE001
                errors.append(e)
                return

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    snap = _fs(repo).snapshot()
    assert {f"v{i}" for i in range(6)} <= set(snap.feature_views)
    assert snap.version == 1 + 6


def test_materialization_state_is_apart_from_definitions(repo):
    fs = _fs(repo)
    fs.apply([user, spend_view()])
    fs.registry.set_state("fraud", "materialization", "user_spend", {"watermark": "2024-01-01T00:00:00"})
    assert fs.snapshot().version == 1
    assert fs.registry.get_state("fraud", "materialization", "user_spend") == {"watermark": "2024-01-01T00:00:00"}
    assert fs.registry.list_state("fraud", "materialization").keys() == {"user_spend"}
    fs.apply([spend_view(description="x")])
    assert fs.registry.get_state("fraud", "materialization", "user_spend") is not None


def test_registry_is_per_project(repo):
    a = FeatureStore(repo)
    b = FeatureStore(repo, config={"project": "other"})
    a.apply([user, spend_view()])
    assert b.snapshot().version == 0 and not b.list_feature_views()
