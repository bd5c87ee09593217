"""Windowed aggregations: one library of mergeable partial aggregates for every path.

Pure Python, pyarrow and numpy; no backend imports. The offline engines and the online stores
compute aggregated features through it, so both follow one rule (docs/aggregations.md):

- ``windows``: tiles and windows (``floor_tile``, ``window_bounds``, ``window_tiles``,
  ``default_tile``, ``format_window``), times in integer microseconds since the epoch (UTC);
- ``functions``: the functions, the column types they take, the feature types they return;
- ``partial``: the partial state (``Partial``; ``update``, ``merge``, ``finalize``; the compact
  ``to_list`` / ``from_list`` form), ``tile_partials`` (vectorised from an Arrow table) and
  ``dedup_events`` (one row per event id).
"""

from skewless.aggregate.functions import FUNCTIONS, column_ok, output_type
from skewless.aggregate.partial import (EMPTY, REL_TOL, STATE_COLUMNS, TILE, Partial, dedup_events, finalize,
                                        merge, merge_all, partials_by_key, read_window, tile_partials, to_arrow,
                                        same_value, update)
from skewless.aggregate.windows import (DAY, HOUR, MICROS, MINUTE, default_tile, floor_tile,
                                        format_duration, format_window, micros, view_tile,
                                        window_bounds, window_tiles)

__all__ = ["FUNCTIONS", "column_ok", "output_type", "EMPTY", "STATE_COLUMNS", "TILE", "Partial",
           "dedup_events", "finalize", "merge", "merge_all", "partials_by_key", "read_window", "tile_partials",
           "to_arrow", "update", "REL_TOL", "same_value", "DAY", "HOUR", "MICROS", "MINUTE", "default_tile", "floor_tile",
           "format_duration", "format_window", "micros", "view_tile", "window_bounds",
           "window_tiles"]
