"""Offline engines behind one protocol; ``make_engine`` picks one from the config."""

from __future__ import annotations

from skewless.config import DuckDBOfflineConfig, ReferenceOfflineConfig, RepoConfig
from skewless.engines.base import Capabilities, EntityInput, OfflineEngine, RetrievalJob


def make_engine(config: RepoConfig) -> OfflineEngine:
    opts = config.offline_store
    if isinstance(opts, DuckDBOfflineConfig):
        from skewless.engines.duckdb import DuckDBEngine
        return DuckDBEngine(config, opts)
    if isinstance(opts, ReferenceOfflineConfig):
        from skewless.engines.reference import ReferenceEngine
        return ReferenceEngine()
    raise AssertionError(f"unhandled offline store {opts!r}")


__all__ = ["Capabilities", "EntityInput", "OfflineEngine", "RetrievalJob", "make_engine"]
