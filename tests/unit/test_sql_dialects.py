"""The SQL builder's dialect table: a dialect entry changes exactly what it lists, and the
visibility rule (plan/visibility.py) reaches the SQL through the builder."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from skewless.engines.sql import DIALECTS, DUCKDB, compile_latest, compile_plan

from .test_golden_sql import CASES, LATEST

# a second, toy entry: backquoted identifiers and another interval spelling, nothing else
TOY = replace(DUCKDB, name="toy", quote="`", micros="INTERVAL {n} MICROSECOND")


def _requote(text: str) -> str:
    """DuckDB's text with every double-quoted identifier backquoted instead."""
    return re.sub(r'"((?:[^"]|"")*)"', lambda m: "`" + m.group(1).replace('""', '"') + "`", text)


def _reinterval(text: str) -> str:
    return re.sub(r"to_microseconds\((\d+)\)", r"INTERVAL \1 MICROSECOND", text)


def test_the_dialect_table_lists_duckdb():
    assert DIALECTS["duckdb"] is DUCKDB


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_dialect_entry_changes_only_what_it_lists_point_in_time(case):
    duck = compile_plan(CASES[case], "__skewless_entity", with_entity_columns=True).text()
    toy = compile_plan(CASES[case], "__skewless_entity", with_entity_columns=True, dialect=TOY).text()
    assert toy != duck
    assert toy == _reinterval(_requote(duck))


@pytest.mark.parametrize("case", sorted(LATEST))
def test_a_dialect_entry_changes_only_what_it_lists_latest(case):
    duck_sql, duck_params = compile_latest(LATEST[case])
    toy_sql, toy_params = compile_latest(LATEST[case], dialect=TOY)
    assert toy_params == duck_params and toy_sql == _requote(duck_sql) != duck_sql


def test_a_quote_inside_a_name_is_doubled_in_every_dialect():
    assert DUCKDB.ident('a"b') == '"a""b"' and TOY.ident("a`b") == "`a``b`"


def test_the_availability_delay_shifts_the_as_of_probe_and_nothing_else():
    """The delay of plan/visibility.py: a row counts at t only if ts + delay <= t. In SQL the
    as-of probe becomes t - delay; the ttl bound stays relative to t."""
    plan = CASES["created_ttl_default"]
    view = plan.views[0]
    delayed = replace(plan, views=(replace(view, availability_delay=timedelta(hours=6)),))
    before = compile_plan(plan, "x", with_entity_columns=False).text()
    after = compile_plan(delayed, "x", with_entity_columns=False).text()
    probe = "{'t': e.__skewless_ts, 'c': 'infinity'::TIMESTAMPTZ}"
    assert probe in before
    assert after == before.replace(
        probe, "{'t': e.__skewless_ts - to_microseconds(21600000000), 'c': 'infinity'::TIMESTAMPTZ}")
    plain = replace(CASES["one_view_no_ttl"].views[0], availability_delay=timedelta(seconds=1))
    text = compile_plan(replace(CASES["one_view_no_ttl"], views=(plain,)), "x", False).text()
    assert "e.__skewless_ts - to_microseconds(1000000) >= v0.ts" in text
