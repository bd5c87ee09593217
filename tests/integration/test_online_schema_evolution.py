"""Adding a field is safe online too: a full re-materialization fills it in for entities whose
latest row was already stored (same (event, created) pair = same fact, rewritten)."""

from __future__ import annotations

from datetime import datetime, timezone

from skewless import FeatureStore, Field
from skewless.types import Float64, Int64

from .conftest import spend_view, user

T = datetime(2024, 2, 9, tzinfo=timezone.utc)


def test_added_field_is_filled_by_rematerializing(repo):
    fs = FeatureStore(repo, config={"project": "evo", "online_store": {"type": "sqlite", "path": "data/o.db"}},
                      clock=lambda: T)
    fs.apply([user, spend_view(schema=[Field("amount", Float64)])])
    fs.materialize(None, T)
    fs.apply([spend_view(schema=[Field("amount", Float64), Field("n_txn", Int64)])])
    before = fs.get_online_features(["user_spend:n_txn"], [{"user_id": "u1"}])
    assert before.statuses["n_txn"] == ["NOT_FOUND"]
    fs.materialize(None, T)
    after = fs.get_online_features(["user_spend:amount", "user_spend:n_txn"], [{"user_id": "u1"}])
    assert after.to_dict() == {"user_id": ["u1"], "amount": [140.0], "n_txn": [3]}
    assert after.statuses["n_txn"] == ["PRESENT"]
