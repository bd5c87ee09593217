from datetime import timedelta

import pyarrow as pa
import pytest

from skewless import Entity, FeatureService, FeatureView, Field, FileSource
from skewless.errors import DefinitionError
from skewless.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp
from skewless import types as T


def _view(**kw):
    args = dict(name="user_spend", entities=[Entity("user", join_keys=["user_id"])],
                schema=[Field("amount", Float64)], source=FileSource("data/x.parquet", "ts"),
                ttl=timedelta(days=1))
    args.update(kw)
    return FeatureView(**args)


def test_entity_join_key_defaults_to_name():
    assert Entity("user_id").join_keys == ("user_id",)
    assert Entity("pair", join_keys=["user_id", "merchant_id"]).join_keys == ("user_id", "merchant_id")


def test_entity_composite_join_key_property_errors():
    with pytest.raises(DefinitionError, match="composite"):
        _ = Entity("pair", join_keys=["a", "b"]).join_key


@pytest.mark.parametrize("bad", ["", "1abc", "has space", "a__b", None, 3])
def test_bad_names_are_named(bad):
    with pytest.raises(DefinitionError) as e:
        Entity(bad)
    assert repr(bad) in str(e.value)


def test_definitions_are_values():
    a, b = _view(), _view()
    assert a == b and hash(a) == hash(b)
    assert _view(ttl=timedelta(days=2)) != a
    with pytest.raises(AttributeError, match="immutable"):
        a.name = "other"  # type: ignore[misc]


def test_view_ttl_forms():
    assert _view(ttl=0).ttl is None
    assert _view(ttl=None).ttl is None
    assert _view(ttl=3600).ttl == timedelta(hours=1)
    with pytest.raises(DefinitionError, match="negative"):
        _view(ttl=timedelta(seconds=-1))


def test_view_checks_name_the_field():
    with pytest.raises(DefinitionError, match=r"field\(s\) \['amount'\] declared twice"):
        _view(schema=[Field("amount", Float64), Field("amount", Int64)])
    with pytest.raises(DefinitionError, match="on_missing='maybe'"):
        _view(on_missing="maybe")
    with pytest.raises(DefinitionError, match="at least one entity"):
        _view(entities=[])
    with pytest.raises(DefinitionError, match="no features besides the join keys"):
        _view(schema=[Field("user_id", Int64)])
    with pytest.raises(DefinitionError, match="timestamp column"):
        _view(schema=[Field("amount", Float64), Field("ts", UnixTimestamp)])


def test_field_default_must_match_type():
    assert Field("n", Int64, default=0).default == 0
    with pytest.raises(DefinitionError, match="default 'x' is not a valid Int64"):
        Field("n", Int64, default="x")
    with pytest.raises(DefinitionError, match="not a valid Float32"):
        Field("x", Float32, default=1e300)
    assert Field("x", Float32, default=1.5).default == 1.5
    with pytest.raises(DefinitionError, match="not a skewless type"):
        Field("n", int)  # type: ignore[arg-type]


def test_projection_names_unknown_feature():
    v = _view(schema=[Field("amount", Float64), Field("count", Int64)])
    assert v[["amount"]].features == ["amount"]
    with pytest.raises(DefinitionError, match="did you mean 'amount'"):
        v[["amout"]]


def test_service_rejects_duplicates_and_empties():
    v = _view()
    with pytest.raises(DefinitionError, match="listed twice"):
        FeatureService("svc", [v, v[["amount"]]])
    with pytest.raises(DefinitionError, match="empty"):
        FeatureService("svc", [])


def test_source_options():
    s = FileSource("data/user spend.parquet", "ts", created_timestamp_column="created",
                   field_mapping={"amt": "amount"})
    assert s.name == "user_spend"
    assert s.source_column("amount") == "amt" and s.source_column("x") == "x"
    with pytest.raises(DefinitionError, match="both 'ts'"):
        FileSource("a.parquet", "ts", created_timestamp_column="ts")
    with pytest.raises(DefinitionError, match="same name"):
        FileSource("a.parquet", "ts", field_mapping={"a": "x", "b": "x"})


def test_round_trip_through_spec():
    v = _view(schema=[Field("amount", Float64, default=1.5, tags={"pii": "no"}),
                      Field("emb", Array(Float32)), Field("raw", Bytes, default=b"\x00")],
              on_missing="default", tags={"team": "risk"}, owner="a@b.c")
    assert FeatureView.from_spec(v.to_spec()) == v
    svc = FeatureService("svc", [v[["amount"]]], description="d")
    assert FeatureService.from_spec(svc.to_spec()) == svc


@pytest.mark.parametrize("t,arrow", [(Int32, pa.int32()), (Int64, pa.int64()), (Float32, pa.float32()),
                                     (Float64, pa.float64()), (String, pa.string()), (Bool, pa.bool_()),
                                     (Bytes, pa.binary()), (UnixTimestamp, pa.timestamp("us", tz="UTC")),
                                     (Array(Int64), pa.list_(pa.int64()))])
def test_type_table(t, arrow):
    assert t.to_arrow() == arrow
    assert T.from_name(t.name) == t


def test_compatibility_follows_the_conformance_table():
    """Widening is accepted outright, narrowing only after a value check (docs/types.md; the
    whole table is pinned in test_types_conformance.py)."""
    assert T.conformance(pa.int32(), Int64).verdict == T.ACCEPT
    assert T.conformance(pa.int64(), Int32).verdict == T.CHECK
    assert T.is_compatible(pa.float32(), Float64)
    assert T.conformance(pa.float64(), Int64).verdict == T.CHECK
    assert not T.is_compatible(pa.string(), Int64)
    assert T.is_compatible(pa.large_string(), String)
    assert T.is_compatible(pa.list_(pa.float32()), Array(Float64))
