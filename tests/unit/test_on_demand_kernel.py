"""The on-demand runner's shortcut (``kernels/on_demand.fit``) gives exactly what the one
conformance table (``kernels/batch.conform``) gives, or raises where it raises: the online path
takes the shortcut, the offline path converts the same lists to Arrow, so both must agree."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from skewless import types as T
from skewless.kernels.batch import BadColumn, IncompatibleType, conform
from skewless.kernels.on_demand import fit

VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2 ** 70, max_value=2 ** 70),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3))
TYPES = [T.Float64, T.Int64, T.String, T.Bool, T.Float32, T.Int32]


def _outcome(f: Any, values: list[Any], dtype: T.ValueType) -> Any:
    try:
        out = f(values, dtype)
    except (BadColumn, IncompatibleType):
        return "refused"
    array = out if isinstance(out, pa.Array) else pa.array(out, type=dtype.to_arrow())
    return [("nan" if v != v else repr(v)) if isinstance(v, float) else v for v in array.to_pylist()]


@settings(max_examples=400, deadline=None)
@given(values=st.lists(VALUES, max_size=6) | st.lists(st.floats(), max_size=6)
       | st.lists(st.integers(min_value=-2 ** 64, max_value=2 ** 64), max_size=6),
       dtype=st.sampled_from(TYPES))
def test_fit_equals_conform(values: list[Any], dtype: T.ValueType) -> None:
    assert _outcome(fit, values, dtype) == _outcome(lambda v, d: conform(v, d.to_arrow()), values, dtype)


def test_a_pandas_result_goes_back_to_input_order_only_when_its_index_says_so() -> None:
    """``_in_input_order``: a permutation of the input's labels 0..n-1 is put back in order;
    any other index (strings, other integers, floats, several levels) is taken by position."""
    import pandas as pd

    from skewless.kernels.on_demand import _in_input_order

    frame = pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6], "o": [7.0, 8.0, 9.0]})
    assert _in_input_order(frame.iloc[[2, 0, 1]], 3)["o"].tolist() == [7.0, 8.0, 9.0]
    for other in (frame.set_index(["a", "b"]), frame.set_index("a"), frame.set_index(pd.Index(["x", "y", "z"])),
                  frame.set_index(pd.Index([2.0, 0.0, 1.0])), frame.set_index(pd.Index([0, 0, 1]))):
        assert _in_input_order(other, 3)["o"].tolist() == [7.0, 8.0, 9.0]
