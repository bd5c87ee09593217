"""The schema of a RequestSource and of an on-demand view: each bad one is refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from skewless import Field, RequestSource, on_demand_feature_view
from skewless.errors import DefinitionError
from skewless.types import Float64, Int64


def plus(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {"o": inputs["r"]}


REQ = RequestSource("req", [Field("r", Int64)])

BAD = [
    ([], "schema is empty"),
    (None, "schema is empty"),
    (["r"], r"schema entries must be Field\(\.\.\.\), got 'r'"),
    ([Field("a", Float64), Field("a", Int64)], r"field\(s\) \['a'\] declared twice in schema"),
]


@pytest.mark.parametrize("schema, message", BAD)
def test_a_request_source_schema_is_checked(schema: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=rf"RequestSource 'vals': {message}"):
        RequestSource("vals", schema)


@pytest.mark.parametrize("schema, message", BAD)
def test_an_on_demand_view_schema_is_checked(schema: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=rf"'plus': {message}"):
        on_demand_feature_view(sources=[REQ], schema=schema, mode="python")(plus)


def test_the_hint_gives_an_example_field() -> None:
    with pytest.raises(DefinitionError) as err:
        RequestSource("vals", [])
    assert "Field(name='val_to_add', dtype=Int64)" in (err.value.hint or "")
