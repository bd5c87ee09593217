"""On-demand feature view overhead online: the same read with and without the view, side by side.

    .venv/bin/python bench/on_demand.py                     # SQLite, 1 and 100 keys, ~20 s
    .venv/bin/python bench/on_demand.py --store memory --iters 20000

A repo with one view ``stats`` (conv_rate and acc_rate Float32, avg_daily_trips Int64, 10,000
drivers) is materialized with skewless into a fresh online store; two on-demand views read it and
a RequestSource (``val_to_add`` Int64), as in Feast's template: ``plus_py`` (``mode="python"``)
and ``plus_pd`` (``mode="pandas"``), each returning ``conv_rate + val_to_add`` and
``avg_daily_trips * 2``. Methods, interleaved in blocks in one process (``_common.interleaved_latencies``):

- ``plain``   ``get_online_features(["stats:conv_rate", "stats:acc_rate", "stats:avg_daily_trips"], rows)``
- ``python``  the same three features plus ``plus_py``'s two outputs (request value in each row)
- ``pandas``  the same with ``plus_pd``

The overhead is the difference of the medians (p50) and of the p99s against ``plain``; the
target (issue 13) is python mode on 1 key <= 50 µs over ``plain``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import format_table, interleaved_latencies, machine_info  # noqa: E402

NOW = datetime(2024, 2, 1, tzinfo=timezone.utc)
DRIVERS = 10_000
PLAIN = ["stats:conv_rate", "stats:acc_rate", "stats:avg_daily_trips"]


def plus_py(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {"conv_plus": [None if c is None else c + v for c, v in zip(inputs["conv_rate"], inputs["val_to_add"])],
            "trips2": [None if t is None else t * 2 for t in inputs["avg_daily_trips"]]}


def plus_pd(inputs: Any) -> Any:
    import pandas as pd
    return pd.DataFrame({"conv_plus": inputs["conv_rate"] + inputs["val_to_add"],
                         "trips2": inputs["avg_daily_trips"] * 2})


def build(repo: Path, store_type: str) -> Any:
    import numpy as np
    import pandas as pd

    from skewless import (Entity, FeatureStore, FeatureView, Field, FileSource, OnDemandFeatureView,
                          RequestSource)
    from skewless.types import Float32, Float64, Int64

    rng = np.random.default_rng(7)
    (repo / "data").mkdir(parents=True)
    pd.DataFrame({"driver_id": np.arange(DRIVERS, dtype="int64"),
                  "event_timestamp": pd.Timestamp(NOW - timedelta(hours=1)),
                  "conv_rate": rng.random(DRIVERS).astype("float32"),
                  "acc_rate": rng.random(DRIVERS).astype("float32"),
                  "avg_daily_trips": rng.integers(0, 1000, DRIVERS)}).to_parquet(repo / "data/stats.parquet")
    online = {"type": "memory"} if store_type == "memory" else {"type": "sqlite", "path": "data/online.db"}
    store = FeatureStore(repo, config={"project": "bench_od", "registry": "data/registry.db",
                                       "online_store": online}, clock=lambda: NOW)
    driver = Entity("driver", join_keys=["driver_id"])
    stats = FeatureView("stats", [driver], [Field("conv_rate", Float32), Field("acc_rate", Float32),
                                            Field("avg_daily_trips", Int64)],
                        FileSource("data/stats.parquet", "event_timestamp"))
    vals = RequestSource("vals_to_add", [Field("val_to_add", Int64)])
    schema = [Field("conv_plus", Float64), Field("trips2", Int64)]
    store.apply([driver, stats, OnDemandFeatureView("plus_py", [stats, vals], schema, plus_py, mode="python"),
                 OnDemandFeatureView("plus_pd", [stats, vals], schema, plus_pd, mode="pandas")])
    store.materialize(None, NOW)
    return store


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    p.add_argument("--keys", default="1,100", help="entities per request, comma-separated")
    p.add_argument("--iters", type=int, default=5000, help="calls per method (at most --budget s)")
    p.add_argument("--budget", type=float, default=8.0)
    args = p.parse_args()
    import random

    with tempfile.TemporaryDirectory() as tmp:
        store = build(Path(tmp), args.store)
        rows_out = []
        for n in [int(k) for k in args.keys.split(",")]:
            rnd = random.Random(n)
            pool = [[{"driver_id": rnd.randrange(DRIVERS), "val_to_add": rnd.randrange(100)} for _ in range(n)]
                    for _ in range(256)]
            plain_pool = [[{"driver_id": r["driver_id"]} for r in rows] for rows in pool]
            methods = {
                "plain": lambda i: store.get_online_features(PLAIN, plain_pool[i]),
                "python": lambda i: store.get_online_features(PLAIN + ["plus_py:conv_plus", "plus_py:trips2"], pool[i]),
                "pandas": lambda i: store.get_online_features(PLAIN + ["plus_pd:conv_plus", "plus_pd:trips2"], pool[i]),
            }
            # the answers agree before anything is timed
            a = store.get_online_features(PLAIN + ["plus_py:conv_plus", "plus_py:trips2"], pool[0]).to_dict()
            b = store.get_online_features(PLAIN + ["plus_pd:conv_plus", "plus_pd:trips2"], pool[0]).to_dict()
            assert a == b, "python and pandas mode disagree"
            for m in methods.values():   # warm up: plans, caches
                for i in range(50):
                    m(i)
            res = interleaved_latencies(methods, list(methods), len(pool), args.iters, 50, args.budget)
            lat = res["latencies"]

            def pct(m: str, q: float) -> float:
                v = sorted(lat[m])
                return v[min(len(v) - 1, int(q * len(v)))] / 1000

            for m in methods:
                rows_out.append([f"{n}", m, f"{pct(m, 0.5):.1f}", f"{pct(m, 0.99):.1f}",
                                 "" if m == "plain" else f"{pct(m, 0.5) - pct('plain', 0.5):+.1f}",
                                 "" if m == "plain" else f"{pct(m, 0.99) - pct('plain', 0.99):+.1f}",
                                 "" if m == "plain" else f"{pct(m, 0.5) / pct('plain', 0.5):.2f}",
                                 res["iterations"]])
        info = machine_info()
        print(f"on-demand overhead, {args.store} online store, {info.get('cpu', '')} "
              f"({info.get('cores', '?')} cores)")
        print(format_table(["keys", "method", "p50 µs", "p99 µs", "Δp50 µs", "Δp99 µs", "p50 ratio", "calls"],
                           rows_out))
        ok = [r for r in rows_out if r[0] == "1" and r[1] == "python"]
        if ok:
            d = float(ok[0][4])
            print(f"python mode, 1 key: {d:+.1f} µs at p50 over the plain read "
                  f"(target <= 50 µs): {'OK' if d <= 50 else 'OVER'}")


if __name__ == "__main__":
    main()
