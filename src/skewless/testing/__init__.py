"""Conformance suites shipped with skewless, so any backend can prove itself.

``skewless.testing.pit``: generated point-in-time scenarios (a hypothesis strategy) and the
engine-against-reference comparison; ``skewless.testing.compare``: table diffs;
``skewless.testing.backends``: how the suites run each installed backend (``BackendTesting``,
docs/backends.md). Needs the ``dev`` extra (hypothesis)."""

from skewless.testing.compare import TableMismatch, assert_tables_equal
from skewless.testing.pit import (
    Expectation,
    Scenario,
    assert_engines_agree,
    large_scenario,
    retrieve,
    scenarios,
    setup_repo,
)

__all__ = ["Expectation", "Scenario", "TableMismatch", "assert_engines_agree",
           "assert_tables_equal", "large_scenario", "retrieve", "scenarios", "setup_repo"]
