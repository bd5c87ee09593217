"""Distribution statistics of the monitors: the Population Stability Index and the two-sample
Kolmogorov-Smirnov statistic (docs/monitoring.md, "Distribution").

Both compare a **baseline** sample with a **current** one of one numeric feature. Bins are
quantile bins of the baseline (``quantile_edges``); counts are made by the caller (DuckDB over
a source, or ``histogram`` here over arrays), so PSI never needs the rows themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_EPSILON = 1e-4


def quantile_edges(values: np.ndarray | Sequence[float], bins: int) -> list[float]:
    """The interior edges of ``bins`` quantile bins of ``values`` (nulls and NaN left out):
    the ``i / bins`` quantiles for ``i = 1 .. bins - 1``, duplicates removed (a discrete
    feature gives fewer, wider bins). Bin ``j`` holds ``edges[j-1] <= x < edges[j]``; the first
    and last bins are open. Empty input: no edges (one bin)."""
    arr = np.asarray(values, dtype="float64")
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return []
    qs = np.quantile(arr, [i / bins for i in range(1, bins)])
    return dedupe_edges([float(q) for q in qs])


def dedupe_edges(edges: Sequence[float | None]) -> list[float]:
    """Sorted, finite, distinct edges (what a quantile sketch may give with repeats)."""
    out: list[float] = []
    for e in sorted(float(x) for x in edges if x is not None and math.isfinite(float(x))):
        if not out or e > out[-1]:
            out.append(e)
    return out


def histogram(values: np.ndarray | Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts of ``values`` (nulls and NaN left out) in the ``len(edges) + 1`` bins of
    ``edges`` (``quantile_edges``: ``edges[j-1] <= x < edges[j]``)."""
    arr = np.asarray(values, dtype="float64")
    arr = arr[~np.isnan(arr)]
    idx = np.searchsorted(np.asarray(edges, dtype="float64"), arr, side="right")
    return [int(c) for c in np.bincount(idx, minlength=len(edges) + 1)]


def psi(baseline: Sequence[int], current: Sequence[int], epsilon: float = DEFAULT_EPSILON) -> float:
    """The Population Stability Index of two histograms over the same bins (counts).

    ``PSI = sum_i (c_i - b_i) * ln(c_i / b_i)`` where ``b_i`` and ``c_i`` are the shares of
    the baseline and current counts in bin ``i``. Source: Yurdakul, B. (2018), "Statistical
    Properties of Population Stability Index", Western Michigan University, eq. (1); also
    Siddiqi, N. (2006), "Credit Risk Scorecards", Wiley, p. 137. Rule of thumb (Siddiqi):
    < 0.1 no shift, 0.1-0.25 some, > 0.25 a major shift.

    Empty bins: a share of 0 makes ``ln`` infinite, so each share is floored at ``epsilon``
    (default 1e-4, i.e. one in ten thousand) before the sum: a bin empty on one side then adds
    a large but finite term. Raises ValueError for histograms of different lengths or an empty
    side (no rows: nothing to compare)."""
    if len(baseline) != len(current):
        raise ValueError(f"histograms of {len(baseline)} and {len(current)} bins")
    nb, nc = float(sum(baseline)), float(sum(current))
    if nb <= 0 or nc <= 0:
        raise ValueError("an empty histogram has no distribution to compare")
    total = 0.0
    for b, c in zip(baseline, current):
        pb = max(b / nb, epsilon)
        pc = max(c / nc, epsilon)
        total += (pc - pb) * math.log(pc / pb)
    return total


def ks(baseline: np.ndarray | Sequence[float], current: np.ndarray | Sequence[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic ``D = sup_x |F_b(x) - F_c(x)|`` of two
    samples (nulls and NaN left out), by ``scipy.stats.ks_2samp`` (Hodges, J.L. (1958), "The
    significance probability of the Smirnov two-sample test"; scipy's implementation). In
    [0, 1]. Raises ValueError when a side is empty."""
    from scipy.stats import ks_2samp

    b = np.asarray(baseline, dtype="float64")
    c = np.asarray(current, dtype="float64")
    b, c = b[~np.isnan(b)], c[~np.isnan(c)]
    if b.size == 0 or c.size == 0:
        raise ValueError("an empty sample has no distribution to compare")
    return float(ks_2samp(b, c).statistic)


@dataclass(frozen=True)
class Drift:
    """PSI and KS of one feature: the statistics, and the histograms a plot needs (``edges``
    interior bin edges; ``baseline`` and ``current`` counts per bin, ``len(edges) + 1`` each)."""

    psi: float
    ks: float
    edges: list[float]
    baseline: list[int]
    current: list[int]
    baseline_rows: int
    current_rows: int

    def series(self) -> dict[str, list[float] | list[int]]:
        return {"edges": self.edges, "baseline": self.baseline, "current": self.current}


def drift(baseline: np.ndarray | Sequence[float], current: np.ndarray | Sequence[float],
          bins: int = 10, epsilon: float = DEFAULT_EPSILON) -> Drift:
    """PSI over ``bins`` quantile bins of ``baseline`` and KS, of two samples of one feature
    (nulls and NaN left out). Raises ValueError when a side is empty."""
    b = np.asarray(baseline, dtype="float64")
    c = np.asarray(current, dtype="float64")
    b, c = b[~np.isnan(b)], c[~np.isnan(c)]
    edges = quantile_edges(b, bins)
    hb, hc = histogram(b, edges), histogram(c, edges)
    return Drift(psi(hb, hc, epsilon), ks(b, c), edges, hb, hc, int(b.size), int(c.size))
