"""Writes ``data/driver_stats/driver_stats.parquet``, the hourly driver stats Feast's template
ships as ``data/driver_stats.parquet``: drivers 1001-1005, one row an hour for 15 days ending at
``end`` (default: this hour), ``conv_rate`` and ``acc_rate`` Float32, ``avg_daily_trips``
Int64, and a ``created`` timestamp. Deterministic: the same ``end`` gives the same file.

The data sits in a directory (not a single file as in Feast's template) because
``driver_stats_push_source`` pushes into it, one new Parquet file per push (docs/online.md).

    python _generate_data.py [REPO_DIR]
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DRIVERS = [1001, 1002, 1003, 1004, 1005]


def driver_stats(end: datetime) -> pd.DataFrame:
    """15 days of hourly stats per driver, the last row at ``end`` (an aware datetime)."""
    hours = pd.date_range(end=pd.Timestamp(end).floor("h"), periods=15 * 24, freq="h")
    rng = np.random.default_rng(1001)
    rows = pd.DataFrame([(ts, d) for d in DRIVERS for ts in hours],
                        columns=["event_timestamp", "driver_id"])
    rows["conv_rate"] = rng.random(len(rows)).astype("float32")
    rows["acc_rate"] = rng.random(len(rows)).astype("float32")
    rows["avg_daily_trips"] = rng.integers(0, 1000, len(rows)).astype("int64")
    rows["created"] = pd.Timestamp(end).floor("h")
    return rows


def write(repo: Path, end: datetime | None = None) -> Path:
    """Write the file under ``repo`` and return its path."""
    end = end or datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    path = repo / "data" / "driver_stats" / "driver_stats.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(driver_stats(end), preserve_index=False), path)
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)))
