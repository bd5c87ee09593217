"""Bad input: a clear error naming the culprit, raised by skewless (not deep inside a library),
and nothing written."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from skewless.errors import InvalidRequestError, SkewlessError, SourceError


def _no_output(tmp_path):
    return not any(p.name.startswith(("out", ".out")) for p in tmp_path.iterdir())


def _fails(store, entity, features, tmp_path, exc=SkewlessError):
    with pytest.raises(exc) as e:
        store.get_historical_features(entity, features).to_parquet(tmp_path / "out.parquet")
    assert _no_output(tmp_path)
    assert e.value.__module__.startswith("skewless")
    return str(e.value)


def test_missing_timestamp_column(store, labels, tmp_path):
    msg = _fails(store, labels.drop(columns="event_timestamp"), ["user_spend:amount"], tmp_path,
                 InvalidRequestError)
    assert "no timestamp column 'event_timestamp'" in msg and "user_id" in msg


def test_missing_join_key_names_column_and_view(store, labels, tmp_path):
    msg = _fails(store, labels.drop(columns="merchant_id"), ["pair_stats:last_country"], tmp_path,
                 InvalidRequestError)
    assert "['merchant_id']" in msg and "'pair_stats'" in msg


def test_timestamp_of_wrong_type(store, labels, tmp_path):
    msg = _fails(store, labels.assign(event_timestamp=labels.event_timestamp.astype(str)),
                 ["user_spend:amount"], tmp_path, InvalidRequestError)
    assert "'event_timestamp' has type" in msg and "pd.to_datetime" in msg


def test_key_of_wrong_type(store, labels, tmp_path):
    msg = _fails(store, labels.assign(user_id=range(5)), ["user_spend:amount"], tmp_path)
    assert "entity_df column 'user_id' has type int64" in msg and "'user_spend'" in msg


def test_source_file_missing(store, repo, labels, tmp_path):
    (repo / "data/spend.parquet").unlink()
    msg = _fails(store, labels, ["user_spend:amount"], tmp_path, SourceError)
    assert str(repo / "data/spend.parquet") in msg and "does not exist" in msg


def test_source_columns_changed(store, repo, labels, tmp_path):
    df = pd.read_parquet(repo / "data/spend.parquet")
    df.drop(columns="n_txn").assign(amount=df.amount.astype(str)).to_parquet(repo / "data/spend.parquet")
    msg = _fails(store, labels, ["user_spend:amount", "user_spend:n_txn"], tmp_path, SourceError)
    assert "['n_txn'] are missing" in msg
    assert re.search(r"column 'amount' has type (large_)?string, but feature 'amount' is declared Float64", msg)


def test_not_a_dataframe(store):
    with pytest.raises(InvalidRequestError, match="got list"):
        store.get_historical_features([{"user_id": "u1"}], ["user_spend:amount"])


def test_bad_reference(store, labels):
    with pytest.raises(InvalidRequestError, match="of the form 'view:feature'"):
        store.get_historical_features(labels, ["user_spend.amount", "x:y:z"])


def test_feature_named_like_an_entity_column(store, labels):
    with pytest.raises(InvalidRequestError, match="would overwrite"):
        store.get_historical_features(labels.assign(amount=1.0), ["user_spend:amount"])


def test_bad_sql(repo):
    from skewless import FeatureStore
    from .conftest import spend_view, user
    fs = FeatureStore(repo)
    fs.apply([user, spend_view()])
    with pytest.raises(InvalidRequestError, match="entity_df SQL query failed"):
        fs.get_historical_features("SELEC nonsense", ["user_spend:amount"])


def test_an_entity_df_column_arrow_cannot_hold_is_named(store, labels, tmp_path):
    """An object column of Python ints beyond 64 bits (a label, or a request value) cannot go
    to Arrow: pyarrow raises a bare OverflowError; the error names the column."""
    entity = labels.assign(big=[10 ** 20, 1, 2, 3, 4])
    msg = _fails(store, entity, ["user_spend:amount"], tmp_path, InvalidRequestError)
    assert "entity_df column 'big'" in msg
