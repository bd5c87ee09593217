"""Windows and tiles: the time arithmetic of windowed aggregations (docs/aggregations.md).

Every time here is an integer number of microseconds since the Unix epoch (UTC), the unit every
engine and online store compares in (``skewless.plan.visibility``); every duration is an integer
number of microseconds too.

The rule (DESIGN section 4): the value of an aggregation with window ``w`` at time ``t`` covers
the events with ``floor_tile(t - w) <= e.ts < t``. Tiles are epoch-aligned: tile ``k`` of size
``s`` covers ``[k*s, (k+1)*s)``. A window therefore splits into

- full tiles, ``floor_tile(t - w) <= tile start < floor_tile(t)``: their partials are complete;
- the head tile, ``[floor_tile(t), t)``: only its events before ``t`` count (``window_bounds``).

At serving time every stored event is before ``t`` (it has happened), so the head tile's stored
partial is the head; offline, a label at ``t`` takes only the head tile's events before ``t``.
"""

from __future__ import annotations

from datetime import timedelta

MICROS = 1_000_000
MINUTE = 60 * MICROS
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# Default tile by window (DESIGN section 4): 5 minutes under 12 hours, 1 hour under 12 days,
# else 1 day.
_DEFAULT_TILES = ((12 * HOUR, 5 * MINUTE), (12 * DAY, HOUR))


def micros(td: timedelta) -> int:
    """A timedelta as integer microseconds (exact: no float rounding)."""
    return (td.days * 86_400 + td.seconds) * MICROS + td.microseconds


def default_tile(window_us: int) -> int:
    """The tile a window gets when its view declares no ``aggregation_tile`` (microseconds)."""
    for below, tile in _DEFAULT_TILES:
        if window_us < below:
            return tile
    return DAY


def view_tile(windows_us: list[int] | tuple[int, ...], declared_us: int | None) -> dict[int, int]:
    """The tile of each window of a view: ``declared_us`` (the view's ``aggregation_tile``) for
    all when given, else each window's ``default_tile``. Checking that a declared tile divides
    every window is ``FeatureView``'s job (it names the view); this only maps."""
    return {w: (declared_us if declared_us else default_tile(w)) for w in windows_us}


def floor_tile(t_us: int, tile_us: int) -> int:
    """The start of the tile containing ``t_us`` (tiles aligned to the Unix epoch; times before
    1970 round down too)."""
    return t_us - (t_us % tile_us)


def window_bounds(t_us: int, window_us: int, tile_us: int) -> tuple[int, int]:
    """``(start_us, head_us)`` of the window at ``t_us``: the window covers events with
    ``start_us <= e.ts < t_us``; the full tiles are those starting in ``[start_us, head_us)``
    (``head_us - start_us`` is a multiple of ``tile_us``), and ``head_us = floor_tile(t_us)``
    starts the head tile, of which only the events before ``t_us`` count.

    Example: window 1h, tile 5m, t = 10:07 -> start 09:05, head 10:05: the full tiles 09:05 ...
    10:00 and the events of [10:05, 10:07)."""
    return floor_tile(t_us - window_us, tile_us), floor_tile(t_us, tile_us)


def window_tiles(t_us: int, window_us: int, tile_us: int) -> range:
    """The starts of every tile a window at ``t_us`` reads, full tiles then the head tile, in
    time order (a ``range``: ``window_us // tile_us`` full tiles, then the head). What an online
    store fetches per key: the partials stored under these tile starts (missing ones are
    empty)."""
    start, head = window_bounds(t_us, window_us, tile_us)
    return range(start, head + tile_us, tile_us)


def format_window(window_us: int) -> str:
    """A window as feature names write it: the largest unit that divides it (``90d``, ``36h``,
    ``30m``, ``45s``; microseconds as ``us``)."""
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", MICROS)):
        if window_us % size == 0:
            return f"{window_us // size}{unit}"
    return f"{window_us}us"


def format_duration(td: timedelta) -> str:
    """``format_window`` of a timedelta (``timedelta(days=7)`` -> ``"7d"``)."""
    return format_window(micros(td))
