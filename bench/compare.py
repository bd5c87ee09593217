"""skewless side by side with Feast 0.67 and the raw limit, measured interleaved in one run.

    .venv/bin/python bench/compare.py                       # scale S, Feast included (~8 min)
    .venv/bin/python bench/compare.py --skip-feast          # skewless + raw limit only (make bench)
    .venv/bin/python bench/compare.py --scale M --only pit,materialize
    .venv/bin/python bench/compare.py --only online.redis.1x4,server --repeat 5

Runs in the project's venv. Feast runs in its own venv (``bench/.venv-feast``, made by
``make bench-feast`` from ``bench/feast/requirements.txt``), one measurement per child process:
``bench/.venv-feast/bin/python bench/feast/runner.py <measurement> '<job>'``. skewless and the raw
limit are measured by the existing benchmarks' child processes (``bench/pit.py``,
``bench/online.py``, ``bench/materialize.py`` with ``--_measure``), on the same generated files.

For every metric the sides run in rounds, ``skewless, Feast, raw`` with the order rotating each
round, so a drift of the machine hits them alike; the table gives medians over the rounds.

Metrics (``--only`` takes names or prefixes: ``pit``, ``online.redis``, ``online.sqlite.1x4``):

- ``pit.one_view``, ``pit.tiebreak``, ``pit.five_views``: ``get_historical_features(...).to_df()``
  wall time (bench/pit.py's scenarios). Feast twice: DuckDB offline store and file (dask) store.
  Raw limit: bench/pit.py's hand-written DuckDB ASOF JOIN + TTL.
- ``materialize.sqlite``, ``materialize.redis``: materialize one view (E entities x 100 rows)
  into a fresh online store. Feast with its DuckDB offline store. Raw limit: bench/materialize.py's
  DuckDB ``arg_max`` + msgpack + bulk write.
- ``online.<store>.<case>`` (store sqlite|redis, case 1x4|1x50|100x4|100x50): in-process
  ``get_online_features`` p50/p99. Feast's call includes ``.to_dict()`` (see runner.py). Raw
  limit: bench/online.py's raw client in the same child (sqlite3 SELECT; redis-py GET / MGET).
- ``server.redis.1x4``: HTTP server, 1 entity x 4 features: sequential p50/p99 and a bounded
  concurrent closed-loop run (req/s, p99). Feast: ``feast serve`` without worker recycling.
  skewless: the hook ``skewless_server`` below (bench/server.py, built separately). Raw limit:
  bench/raw_server.py (a plain ASGI app under the same uvicorn settings and SO_REUSEPORT workers:
  orjson parse, the skewless Redis keys, one MGET, the raw records base64 in a JSON list), same
  load generator and request sequence, in the same rotation.

Correctness, in the same run: the first round's retrieval outputs of skewless, raw DuckDB, Feast
DuckDB and Feast file are compared row by row (by label id; missing and duplicated rows counted
per label class, differing values counted per column, examples given); for online reads and the
HTTP server, the values served for 20 sampled requests by skewless and Feast are compared with the
latest source row of each entity read from the Parquet files.

Results: ``bench/results/compare-<stamp>.json`` (every run, medians, checks) and ``.png``.
Scales (feature rows per view): S 1M, M 10M, L 100M.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import materialize as mat  # noqa: E402
import online as onl  # noqa: E402
import pit  # noqa: E402
from _common import (  # noqa: E402
    add_run_args,
    end_git_state,
    git_state,
    machine_info,
    median,
    run_child,
    wait_until_quiet,
    write_results,
)

FEAST_VENV = HERE / ".venv-feast"
FEAST_PY = FEAST_VENV / "bin" / "python"
RUNNER = HERE / "feast" / "runner.py"

# scale -> sizes. pit: (entities, rows per entity, labels); materialize: (entities, rows per
# entity); online: entities per view and timed calls per method (1 / 100 entities) and budget.
SCALES: dict[str, dict[str, Any]] = {
    "S": {"pit": pit.SCALES["S"], "mat": (10_000, 100), "online": 10_000, "iters": (3_000, 500), "budget": 3.0},
    "M": {"pit": pit.SCALES["M"], "mat": (100_000, 100), "online": 100_000, "iters": (10_000, 1_500), "budget": 6.0},
    "L": {"pit": pit.SCALES["L"], "mat": (1_000_000, 100), "online": 1_000_000, "iters": (10_000, 1_500),
          "budget": 6.0},
}
ONLINE_CASES = ("1x4", "1x50", "100x4", "100x50")
METRICS = (["pit.one_view", "pit.tiebreak", "pit.five_views", "materialize.sqlite", "materialize.redis"]
           + [f"online.{s}.{c}" for s in ("sqlite", "redis") for c in ONLINE_CASES]
           + ["server.redis.1x4"])


def selected(only: str | None) -> list[str]:
    if not only:
        return list(METRICS)
    tokens = [t.strip() for t in only.split(",") if t.strip()]
    out = [m for m in METRICS if any(m == t or m.startswith(t + ".") for t in tokens)]
    unknown = [t for t in tokens if not any(m == t or m.startswith(t + ".") for m in METRICS)]
    if unknown:
        raise SystemExit(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)} or their prefixes")
    return out


class Runner:
    """Runs the children, keeps every result and the notes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.runs: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.failed = False

    def child(self, argv: list[str], what: dict[str, Any]) -> dict[str, Any] | None:
        a = self.args
        if a.wait_quiet is not None:
            wait_until_quiet(a.wait_quiet, a.quiet_timeout)
        t = time.perf_counter()
        try:
            res = run_child(argv, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            res = {"error": f"timeout after {a.timeout:.0f} s"}
        except RuntimeError as e:
            res = {"error": str(e)[-2000:]}
        res.update(what)
        res["child_s"] = time.perf_counter() - t
        self.runs.append(res)
        if "error" in res:
            self.failed = True
            print(f"    {what.get('metric')} {what.get('side')}: FAILED {res['error'][-600:]}", flush=True)
            return None
        return res

    def skewless(self, script: str, job: dict[str, Any], what: dict[str, Any]) -> dict[str, Any] | None:
        return self.child([sys.executable, str(HERE / script), "--_measure", json.dumps(job, default=str)], what)

    def feast(self, measurement: str, job: dict[str, Any], what: dict[str, Any]) -> dict[str, Any] | None:
        return self.child([str(FEAST_PY), str(RUNNER), measurement, json.dumps(job, default=str)], what)


def rotate(items: list[Any], r: int) -> list[Any]:
    k = r % len(items) if items else 0
    return items[k:] + items[:k]


# --------------------------------------------------------------------------------------------
# Point-in-time retrieval
# --------------------------------------------------------------------------------------------

def run_pit(R: Runner, metrics: list[str], work: Path) -> dict[str, Any]:
    a = R.args
    E, K, N = SCALES[a.scale]["pit"]
    scenarios = [m.split(".", 1)[1] for m in metrics]
    spec = pit.DataSpec(E, K, N, 60.0, a.seed, 5)
    paths = pit.ensure_data(spec, a.data_dir, scenarios)
    wd = work / "pit"
    (wd / "out").mkdir(parents=True, exist_ok=True)
    checks: dict[str, Any] = {}
    for scenario in scenarios:
        metric = f"pit.{scenario}"
        views = pit.scenario_views(scenario, paths, spec.views)
        print(f"\n[{metric}] {len(views)} view(s) x {E * K:,} rows, {N:,} labels", flush=True)
        sides = ["skewless", "raw"] + ([] if a.skip_feast else ["feast_duckdb", "feast_file"])
        outs: dict[str, Path] = {}
        for r in range(a.repeat):
            for side in rotate(sides, r):
                what = {"metric": metric, "side": side, "round": r}
                out = wd / "out" / f"{scenario}-{side}.parquet"
                if side in ("skewless", "raw"):
                    job: dict[str, Any] = {
                        "scenario": scenario, "method": "skewless" if side == "skewless" else "duckdb",
                        "views": views, "labels": str(paths["labels"]), "ttl_s": spec.ttl_s,
                        "memory_limit": None, "threads": None, "temp_directory": str(wd / "duckdb_tmp"),
                        "raw_tiebreak": "hugeint", "repo": str(wd / "repo" / scenario)}
                    if r == 0:
                        job["out"] = str(out)
                    res = R.skewless("pit.py", job, what)
                else:
                    fjob: dict[str, Any] = {"offline": side.split("_", 1)[1], "views": views,
                                            "labels": str(paths["labels"]), "ttl_s": spec.ttl_s,
                                            "repo": str(wd / f"feast-{side}-{scenario}-{r}")}
                    if r == 0:
                        fjob["out"] = str(out)
                    res = R.feast("pit", fjob, what)
                    shutil.rmtree(fjob["repo"], ignore_errors=True)
                if res is not None:
                    if r == 0:
                        outs[side] = out
                    print(f"  round {r + 1}: {side:<13} {res['wall_s']:7.2f} s wall {res['cpu_s']:6.2f} s CPU  "
                          f"rows {res['rows']:,}  bg {res['background_cores']:.2f}", flush=True)
        if "raw" in outs:
            checks[metric] = check_pit(scenario, views, paths["labels"], outs, N)
            print_pit_check(checks[metric])
    return {"checks": checks, "params": {"entities": E, "rows_per_entity": K, "labels": N, "ttl_days": 60.0}}


def load_output(path: Path, cols: list[str], n: int):  # type: ignore[no-untyped-def]
    """(values per column aligned by label id (NaN = null or absent), present mask, id counts)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    t = pq.read_table(path)
    ids = t.column("label_id").to_numpy()
    counts = np.bincount(ids[(ids >= 0) & (ids < n)], minlength=n)
    # for a duplicated id keep its first row
    first = np.full(n, -1, dtype=np.int64)
    order = np.arange(len(ids))[::-1]
    first[ids[order]] = order
    present = first >= 0
    vals = {}
    for c in cols:
        col = pc.fill_null(t.column(c).cast("float64"), float("nan")).to_numpy()
        v = np.full(n, np.nan)
        v[present] = col[first[present]]
        vals[c] = v
    return vals, present, counts, t.num_rows


def check_pit(scenario: str, views: list[dict[str, Any]], labels_path: Path, outs: dict[str, Path],
              n: int, max_examples: int = 3) -> dict[str, Any]:
    """Every output against the raw DuckDB reference, row by row by label id.

    Per side: rows returned, label ids missing (per label class) and duplicated, and on the rows
    present the values that differ per column (NaN = null on both sides counts as equal), with
    examples. Plus bench/pit.py's own check of skewless vs raw (input order, known answers)."""
    import numpy as np
    import pyarrow.parquet as pq

    cols = pit.out_columns(views)
    labels = pq.read_table(labels_path, columns=["label_id", pit.KEY, pit.TS, "kind"])
    kind = labels.column("kind").to_numpy()
    ent = labels.column(pit.KEY).to_numpy()
    ts = labels.column(pit.TS).to_pylist()
    kname = {v: k for k, v in pit.KINDS.items()}
    ref_vals, ref_present, _, _ = load_output(outs["raw"], cols, n)
    ref_all_null = np.all(np.isnan(np.vstack([ref_vals[c] for c in cols])), axis=0)
    report: dict[str, Any] = {"scenario": scenario, "labels": n, "reference": "raw DuckDB ASOF", "sides": {},
                              "problems": []}
    if {"skewless", "raw"} <= set(outs):
        own = pit.check_outputs(scenario, views, labels_path, {"duckdb": outs["raw"], "skewless": outs["skewless"]}, n)
        report["pit_check"] = {"ok": own["ok"], "problems": own["problems"], "methods": own["methods"]}
        if not own["ok"]:
            report["problems"].extend(f"pit.py check: {p}" for p in own["problems"])

    def example(i: int, side_vals: dict[str, Any] | None, only: list[str]) -> dict[str, Any]:
        ex: dict[str, Any] = {"label_id": int(i), pit.KEY: int(ent[i]), pit.TS: str(ts[i]), "kind": kname[int(kind[i])],
                              "raw": {c: _num(ref_vals[c][i]) for c in only}}
        if side_vals is not None:
            ex["side"] = {c: _num(side_vals[c][i]) for c in only}
        return ex

    for side, path in outs.items():
        if side == "raw":
            continue
        vals, present, counts, rows = load_output(path, cols, n)
        missing = ~present
        dup = counts > 1
        both = present & ref_present
        per_col: dict[str, int] = {}
        diff = np.zeros(n, dtype=bool)
        for c in cols:
            a, b = vals[c], ref_vals[c]
            d = both & ~((a == b) | (np.isnan(a) & np.isnan(b)))
            per_col[c] = int(d.sum())
            diff |= d
        # a missing label whose (entity, time) another label shares, and that one came back:
        # collapsed into it (the file store drops duplicate (entity, time) label rows)
        collapsed = np.zeros(n, dtype=bool)
        if missing.any():
            key = ent
            tsu = labels.column(pit.TS).cast("int64").to_numpy()
            kept = {(int(key[i]), int(tsu[i])) for i in np.flatnonzero(present)}
            for i in np.flatnonzero(missing):
                collapsed[i] = (int(key[i]), int(tsu[i])) in kept
        s: dict[str, Any] = {
            "rows": rows, "rows_expected": n,
            "missing": int(missing.sum()),
            "missing_by_kind": {kname[k]: int((missing & (kind == k)).sum()) for k in sorted(kname)
                                if (missing & (kind == k)).any()},
            "missing_with_values_in_reference": int((missing & ~ref_all_null).sum()),
            "missing_all_null_in_reference": int((missing & ref_all_null).sum()),
            "missing_collapsed_into_same_entity_and_time": int((missing & collapsed).sum()),
            "duplicated_ids": int(dup.sum()),
            "rows_differing": int(diff.sum()),
            "differing_per_column": {c: v for c, v in per_col.items() if v},
        }
        if missing.any():
            s["missing_examples"] = []
            for why, mask in (("values in the reference", missing & ~ref_all_null & ~collapsed),
                              ("same entity and time as a label that came back", missing & collapsed),
                              ("all null in the reference", missing & ref_all_null & ~collapsed)):
                for i in np.flatnonzero(mask)[:max_examples]:
                    s["missing_examples"].append({"missing": why, **example(int(i), None, cols[:4])})
        if diff.any():
            idx = np.flatnonzero(diff)[:max_examples]
            s["differing_examples"] = [example(i, vals, [c for c in cols if per_col[c]]) for i in idx]
            if len(views) == 1 and views[0]["created"]:
                try:
                    s["differing_ties"] = classify_ties(views[0], np.flatnonzero(diff), ent, labels, vals, ref_vals)
                except Exception as e:  # noqa: BLE001 - a diagnosis, not the check itself
                    s["differing_ties_error"] = repr(e)
        s["agrees"] = not (missing.any() or dup.any() or diff.any() or rows != n)
        report["sides"][side] = s
        if side == "skewless" and not s["agrees"]:
            report["problems"].append(f"skewless differs from raw DuckDB: {s['rows_differing']} rows, "
                                      f"{s['missing']} missing")
    report["ok"] = not report["problems"]  # Feast's differences are reported, not failures
    return report


def classify_ties(v: dict[str, Any], idx: Any, ent: Any, labels: Any, vals: dict[str, Any],
                  ref_vals: dict[str, Any]) -> dict[str, int]:
    """For rows whose values differ from the reference on a view with a created-timestamp
    column: how many got another source row *with the same event time* as the reference's row
    (a tie broken differently), and in how many of those that row has an older or null created
    time (the tie-break rule picks the greatest created time). Rows are identified by their
    ``i1`` value, never null in the generated data."""
    import duckdb
    import pyarrow as pa
    name = v["name"]
    d = pa.table({"label_id": pa.array(idx, type=pa.int64()), pit.KEY: pa.array(ent[idx]),
                  pit.TS: labels.column(pit.TS).take(pa.array(idx)),
                  "ref_i1": pa.array(ref_vals[f"{name}__i1"][idx]), "side_i1": pa.array(vals[f"{name}__i1"][idx])})
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("d", d)
    row = con.execute(f"""
        WITH src AS (SELECT {pit.KEY}, {pit.TS}, {pit.CREATED}, i1 FROM read_parquet('{v['path']}')),
        m AS (SELECT DISTINCT d.label_id, r.{pit.CREATED} AS rc, s.{pit.CREATED} AS sc
              FROM d JOIN src r ON r.{pit.KEY} = d.{pit.KEY} AND r.i1 = d.ref_i1 AND r.{pit.TS} <= d.{pit.TS}
                     JOIN src s ON s.{pit.KEY} = d.{pit.KEY} AND s.i1 = d.side_i1 AND s.{pit.TS} = r.{pit.TS})
        SELECT count(DISTINCT label_id), count(DISTINCT label_id) FILTER (WHERE sc IS NULL OR sc < rc) FROM m
    """).fetchone()
    con.close()
    assert row is not None
    return {"rows": int(len(idx)), "same_event_time_other_row": int(row[0]),
            "of_which_older_or_null_created": int(row[1]), "other": int(len(idx) - row[0])}


def _num(x: float) -> float | int | None:
    if x != x:
        return None
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else float(x)


def print_pit_check(rep: dict[str, Any]) -> None:
    for side, s in rep["sides"].items():
        line = (f"  check {side:<13} vs raw: rows {s['rows']:,}/{s['rows_expected']:,}, "
                f"{s['rows_differing']:,} rows differ")
        if s["differing_per_column"]:
            line += f" {s['differing_per_column']}"
        if s["missing"]:
            line += (f"; {s['missing']:,} labels missing {s['missing_by_kind']}: "
                     f"{s['missing_all_null_in_reference']:,} all null in the reference, "
                     f"{s['missing_with_values_in_reference']:,} with values; "
                     f"{s['missing_collapsed_into_same_entity_and_time']:,} share entity and time with "
                     "a label that came back")
        if s["duplicated_ids"]:
            line += f"; {s['duplicated_ids']:,} label ids duplicated"
        if s.get("differing_ties"):
            t = s["differing_ties"]
            line += (f"; of the {t['rows']:,} differing rows {t['same_event_time_other_row']:,} got another source row "
                     f"with the same event time as the reference's ({t['of_which_older_or_null_created']:,} of them "
                     "with an older or null created time: the tie-break picked the wrong row)")
        print(line, flush=True)
        seen: set[str] = set()
        for ex in s.get("missing_examples", []):  # one example of each reason
            if ex["missing"] not in seen:
                seen.add(ex["missing"])
                print(f"      e.g. {json.dumps(ex)}")
        for ex in s.get("differing_examples", [])[:2]:
            print(f"      e.g. {json.dumps(ex)}")
    print("  check: " + ("OK (skewless = raw DuckDB)" if rep["ok"] else "FAILED: " + "; ".join(rep["problems"])),
          flush=True)


# --------------------------------------------------------------------------------------------
# Materialization
# --------------------------------------------------------------------------------------------

def run_materialize(R: Runner, metrics: list[str], work: Path) -> dict[str, Any]:
    a = R.args
    E, K = SCALES[a.scale]["mat"]
    path = mat.ensure_data(a.data_dir, E, K, a.seed)
    now = mat.now_after(path)
    wd = work / "materialize"
    checks: dict[str, Any] = {}
    for metric in metrics:
        store = metric.split(".")[1]
        print(f"\n[{metric}] {E * K:,} rows / {E:,} entities -> {store}", flush=True)
        sides = ["skewless", "raw"] + ([] if a.skip_feast else ["feast"])
        stored: dict[str, list[int]] = {}
        for r in range(a.repeat):
            for side in rotate(sides, r):
                what = {"metric": metric, "side": side, "round": r}
                project = f"bench_{'feast' if side == 'feast' else 'mat'}_{uuid.uuid4().hex[:8]}"
                if side == "feast":
                    job = {"online": store, "path": str(path), "now": now.isoformat(), "project": project,
                           "repo": str(wd / project), "redis": a.redis, "offline": "duckdb"}
                    res = R.feast("materialize", job, what)
                    shutil.rmtree(job["repo"], ignore_errors=True)
                else:
                    job = {"method": "skewless" if side == "skewless" else "raw", "store": store, "dataset": "compare",
                           "path": str(path), "now": now.isoformat(), "project": project, "repo": str(wd / project),
                           "redis": a.redis, "threads": None, "rebuild": False}
                    try:
                        res = R.skewless("materialize.py", job, what)
                    finally:
                        mat.cleanup(job)
                if res is not None:
                    m = res["materialize"]
                    stored.setdefault(side, []).append(m["stored"])
                    left = res.get("redis_keys_left")
                    print(f"  round {r + 1}: {side:<9} {m['wall_s']:6.2f} s wall ({E * K / m['wall_s'] / 1e6:.2f}M rows/s, "
                          f"CPU {m['cpu_s']:.2f} s) stored {m['stored']:,}"
                          + (f"  redis keys left after teardown {left}" if left else "")
                          + f"  bg {res['background_cores']:.2f}", flush=True)
        checks[metric] = {"entities": E, "stored": stored,
                          "ok": all(v == E for vs in stored.values() for v in vs)}
        print(f"  check: every run stored one record per entity ({E:,}): "
              f"{'yes' if checks[metric]['ok'] else 'NO ' + json.dumps(stored)}", flush=True)
    return {"checks": checks, "params": {"entities": E, "rows_per_entity": K, "source_rows": E * K,
                                         "path": str(path), "now": now.isoformat()}}


# --------------------------------------------------------------------------------------------
# Online serving (in-process) and the HTTP server
# --------------------------------------------------------------------------------------------

def reference_rows(paths: dict[str, Path], views: list[str]) -> dict[str, dict[int, dict[str, Any]]]:
    """Per view, entity -> the values of its latest source row at online.NOW (the raw answer)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for v in views:
        t = pq.read_table(paths[v])
        t = t.filter(pc.less_equal(t.column(onl.TS), onl.NOW))
        t = t.sort_by([(onl.KEY, "ascending"), (onl.TS, "ascending")])
        d = t.to_pydict()
        names = [f for f, _ in onl.feature_names(v)]
        rows: dict[int, dict[str, Any]] = {}
        for i, k in enumerate(d[onl.KEY]):
            rows[k] = {f: d[f][i] for f in names}  # later rows overwrite earlier ones
        out[v] = rows
    return out


def same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and a != a):
        return b is None or (isinstance(b, float) and b != b)
    return bool(a == b)


def check_online_sample(label: str, sample: list[dict[str, Any]], views: list[str],
                        ref: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """``sample``: [{entities: [...], values: {feature: [...]}}]; every value against ``ref``."""
    checked, bad = 0, []
    for req in sample:
        for j, e in enumerate(req["entities"]):
            for v in views:
                for f, _ in onl.feature_names(v):
                    checked += 1
                    want = ref[v][e][f]
                    got = req["values"].get(f, [None] * len(req["entities"]))[j]
                    status = req.get("statuses", {}).get(f, ["PRESENT"] * len(req["entities"]))[j]
                    if not same(got, want) or status != "PRESENT":
                        bad.append({"entity": e, "feature": f, "got": got, "status": status, "source": want})
    return {"side": label, "values_checked": checked, "differing": len(bad), "examples": bad[:5], "ok": not bad}


def skewless_sample(setup: dict[str, Any], job: dict[str, Any], views: list[str]) -> list[dict[str, Any]]:
    """skewless's answers to the first 20 requests of ``job`` (the requests Feast answers too)."""
    fs = onl.open_store(setup)
    try:
        refs = [f"{v}:{f}" for v in views for f, _ in onl.feature_names(v)]
        out = []
        for ids in onl.requests(job)[:20]:
            resp = fs.get_online_features(refs, [{onl.KEY: e} for e in ids])
            out.append({"entities": ids, "values": resp.values, "statuses": resp.statuses})
        return out
    finally:
        fs.online_store.close()


def setup_no_ttl(store: str, work: Path, project: str, redis: str, paths: dict[str, Path]) -> dict[str, Any]:
    """online.setup_store with the same views but no TTL (for the servers, which serve at the
    real clock): apply, materialize every view up to online.NOW with skewless."""
    from skewless import Entity, FeatureStore, FeatureView, Field, FileSource
    from skewless import types as T
    repo = work / store
    repo.mkdir(parents=True, exist_ok=True)
    config = onl.store_config(store, repo, project, redis)
    fs = FeatureStore(repo, config=config, clock=lambda: onl.NOW)
    entity = Entity(name="entity", join_keys=[onl.KEY])
    fs.apply([entity, *[FeatureView(
        name=v, entities=[entity], ttl=None,
        schema=[Field(name=onl.KEY, dtype=T.Int64)] + [Field(name=f, dtype=getattr(T, t)) for f, t in onl.feature_names(v)],
        source=FileSource(path=str(p), timestamp_field=onl.TS, name=f"{v}_src")) for v, p in paths.items()]])
    reports = fs.materialize(None, onl.NOW)
    fs.online_store.close()
    return {"repo": str(repo), "config": config, "records": sum(r.rows for r in reports)}


def run_online(R: Runner, metrics: list[str], work: Path) -> dict[str, Any]:
    a = R.args
    sc = SCALES[a.scale]
    E = sc["online"]
    iters1, iters100 = sc["iters"]
    online_metrics = [m for m in metrics if m.startswith("online.")]
    server_metrics = [m for m in metrics if m.startswith("server.")]
    stores = sorted({m.split(".")[1] for m in online_metrics})
    cases = {m.split(".")[2] for m in online_metrics + server_metrics}
    views = list(dict.fromkeys(v for c in onl.CASES if c in cases for v in onl.CASES[c]["views"]))
    paths = onl.ensure_data(a.data_dir, E, a.seed, views)
    ref = reference_rows(paths, views)
    project = f"bench_online_{uuid.uuid4().hex[:8]}"
    fproject = f"bench_feast_{uuid.uuid4().hex[:8]}"
    wd = work / "online"
    setups: dict[str, dict[str, Any]] = {}
    fsetups: dict[str, dict[str, Any]] = {}
    ssetups: dict[str, dict[str, Any]] = {}   # the HTTP servers' (no TTL)
    fssetups: dict[str, dict[str, Any]] = {}
    checks: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    try:
        for s in stores:
            setups[s] = onl.setup_store(s, wd, project, a.redis, paths)
            print(f"\n[online setup] {s}: skewless materialized {setups[s]['records']:,} records "
                  f"({len(views)} views x {E:,} entities) in {setups[s]['materialize_s']:.1f} s", flush=True)
            if not a.skip_feast:
                frepo = wd / f"feast-{s}"
                fjob = {"online": s, "repo": str(frepo), "project": fproject, "redis": a.redis,
                        "views": {v: str(p) for v, p in paths.items()}}
                res = R.feast("online-setup", fjob, {"metric": "online.setup", "side": "feast", "store": s})
                if res is not None:
                    fsetups[s] = {**fjob, **res}
                    print(f"[online setup] {s}: Feast materialized the same views in {res['materialize_s']:.1f} s "
                          f"(entities stored per view: {sorted(set(res['counts'].values()))})", flush=True)
        for metric in online_metrics:
            _, s, c = metric.split(".")
            k = onl.CASES[c]["entities"]
            cviews = onl.CASES[c]["views"]
            print(f"\n[{metric}] {k} entit{'y' if k == 1 else 'ies'} x {onl.CASES[c]['layout']}", flush=True)
            sides = ["skewless"] + (["feast"] if s in fsetups else [])
            sample_job: dict[str, Any] = {}
            for r in range(a.repeat):
                job = {"store": s, "case": c, "round": r, "views": cviews, "entities_per_request": k,
                       "entities": E, "seed": a.seed, "iters": iters1 if k == 1 else iters100,
                       "block": 500 if k == 1 else 50, "budget_s": sc["budget"], "redis": a.redis}
                if r == 0:
                    sample_job = dict(job)
                for side in rotate(sides, r):
                    what = {"metric": metric, "side": side, "round": r}
                    if side == "skewless":
                        res = R.skewless("online.py", {**job, "repo": setups[s]["repo"],
                                                       "config": setups[s]["config"]}, what)
                    else:
                        fj = {**job, "repo": fsetups[s]["repo"]}
                        if r == 0:
                            fj["check_out"] = str(wd / f"feast-sample-{s}-{c}.json")
                        res = R.feast("online", fj, what)
                    if res is not None:
                        line = "  ".join(f"{m} p50 {v['p50']:8.1f} p99 {v['p99']:8.1f}" for m, v in res["methods"].items())
                        flag = ""
                        if "check" in res and not res["check"]["ok"]:
                            flag = f"  CHECK FAILED {res['check']['problems'][:2]}"
                        print(f"  round {r + 1}: {side:<8} {line} us  n={res['iterations']:,} "
                              f"bg {res['background_cores']:.2f}{flag}", flush=True)
            chk: dict[str, Any] = {"sides": []}
            sk = skewless_sample(setups[s], sample_job, cviews)
            chk["sides"].append(check_online_sample("skewless", sk, cviews, ref))
            fpath = wd / f"feast-sample-{s}-{c}.json"
            if fpath.exists():
                fs_sample = json.loads(fpath.read_text())
                chk["sides"].append(check_online_sample("feast", fs_sample, cviews, ref))
                chk["same_requests"] = [x["entities"] for x in fs_sample] == [x["entities"] for x in sk]
            raw_ok = [x["check"]["ok"] for x in R.runs if x.get("metric") == metric and "check" in x]
            chk["skewless_vs_raw_read"] = {"runs": len(raw_ok), "ok": all(raw_ok)}
            chk["ok"] = all(x["ok"] for x in chk["sides"] if x["side"] == "skewless") and all(raw_ok)
            checks[metric] = chk
            for x in chk["sides"]:
                print(f"  check {x['side']:<8} {x['values_checked']:,} values of 20 requests vs the latest source "
                      f"row: {x['differing']} differ" + (f" e.g. {x['examples'][:2]}" if x["differing"] else ""))
            print(f"  check skewless vs raw store read (online.py, every run): "
                  f"{'all equal' if chk['skewless_vs_raw_read']['ok'] else 'DIFFER'}", flush=True)
        if server_metrics:
            # The servers run at the real clock, long after the data's event times: the views get
            # no TTL (else skewless serves OUTSIDE_TTL nulls, while Feast ignores TTL online), in
            # projects of their own.
            sproject = f"bench_server_cmp_{uuid.uuid4().hex[:8]}"
            for s in sorted({m.split(".")[1] for m in server_metrics}):
                ssetups[s] = setup_no_ttl(s, wd / "server", sproject, a.redis, paths)
                print(f"\n[server setup] {s}: skewless materialized {ssetups[s]['records']:,} records (no TTL)",
                      flush=True)
                if not a.skip_feast:
                    fjob = {"online": s, "repo": str(wd / f"feast-server-{s}"), "project": fproject + "_srv",
                            "redis": a.redis, "views": {v: str(p) for v, p in paths.items()}, "no_ttl": True}
                    res = R.feast("online-setup", fjob, {"metric": "server.setup", "side": "feast", "store": s})
                    if res is not None:
                        fssetups[s] = {**fjob, **res}
        for metric in server_metrics:
            checks[metric], extra[metric] = run_server(R, metric, ssetups, fssetups, ref, E, wd)
    finally:
        for name, su in (("online", setups), ("server", ssetups)):
            if "redis" in su:
                onl.drop_store(su["redis"], views)
                print(f"  redis: dropped the tables of skewless project {su['redis']['config']['project']} ({name})",
                      flush=True)
        for fsu_all in (fsetups, fssetups):
            for s, fsu in fsu_all.items():
                res = R.feast("teardown", {"repo": fsu["repo"], "online": s, "project": fsu["project"],
                                           "redis": a.redis}, {"metric": "online.teardown", "side": "feast", "store": s})
                if s == "redis" and res is not None:
                    print(f"  redis: Feast teardown of project {fsu['project']} (keys left for the second pass: "
                          f"{res.get('redis_keys_left')})", flush=True)
    return {"checks": checks, "server": extra,
            "params": {"entities": E, "iters_1": iters1, "iters_100": iters100, "budget_s": sc["budget"],
                       "cases": {c: onl.CASES[c] for c in cases if c in onl.CASES}}}


# ---- HOOK: skewless's HTTP server metrics ---------------------------------------------------
# bench/server.py (``skewless serve`` under bench/_load.py's load generator) is maintained
# separately. compare.py calls, in this order of preference:
#   1. ``server.measure_for_compare(job) -> dict`` if it exists: job keys store, repo, config (the
#      materialized skewless repo of online.setup_store), redis, views, entities_per_request,
#      entities, seed, workers, seq_requests, seq_budget_s, conc_connections, conc_requests,
#      conc_budget_s; it returns Feast's runner shape (bench/feast/runner.py ``m_server``) or
#      bench/_load.py's: {"sequential": {...}, "concurrent": {...}, "check": {"ok": ...}};
#   2. else ``server.run(scale, redis, workers, seed, quick=True, ..., concurrency=...)``, the
#      whole server benchmark (its own repo over the same bench/online.py files, its own check
#      against FeatureStore.get_online_features), of which the ``<case> sequential`` and
#      ``<case> closed c=<connections>`` runs are taken;
#   3. else (no bench/server.py) the skewless column says n/a and a note is printed.
SERVER_HOOK = "measure_for_compare"


def skewless_server(job: dict[str, Any], scale: str, data_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    if not (HERE / "server.py").exists():
        return None, "bench/server.py does not exist yet: skewless server figures skipped"
    try:
        import server  # type: ignore[import-not-found]
    except Exception as e:  # noqa: BLE001 - another engineer's work in progress
        return None, f"bench/server.py failed to import ({e!r}): skewless server figures skipped"
    fn: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(server, SERVER_HOOK, None)
    if fn is not None:
        return fn(job), None
    if not hasattr(server, "run"):
        return None, f"bench/server.py has neither {SERVER_HOOK}(job) nor run(): skewless server figures skipped"
    case = job["case"]
    out = server.run(scale if scale in onl.SCALES else "M", job["redis"], job["workers"], job["seed"], quick=True,
                     data_root=data_dir, results_dir=None, entities=job["entities"],
                     concurrency=job["conc_connections"], verbose=False)
    runs = out.get("runs", {})
    seq, conc = runs.get(f"{case} sequential"), runs.get(f"{case} closed c={job['conc_connections']}")
    if seq is None or conc is None:
        return None, f"bench/server.py run() returned no '{case} sequential' / closed run: skipped"
    return {"sequential": seq, "concurrent": conc, "check": out.get("check"),
            "server_runs": {k: {x: v.get(x) for x in ("requests", "rps", "p50_ms", "p99_ms", "errors")}
                            for k, v in runs.items()}, "via": "bench/server.py run(quick=True)"}, None
# ---- end of the hook -------------------------------------------------------------------------


def norm_server(res: dict[str, Any]) -> dict[str, Any]:
    """Accept bench/_load.py's result shape too (latencies ``p50_ms``...; ``seconds``)."""
    out = dict(res)
    for k in ("sequential", "concurrent"):
        d = res.get(k)
        if isinstance(d, dict) and "latency" not in d and "p50_ms" in d:
            out[k] = {**d, "connections": d.get("concurrency", 1),
                      "latency": {p[:-3]: v * 1000.0 for p, v in d.items() if p.endswith("_ms")}}
    return out


def run_server(R: Runner, metric: str, setups: dict[str, Any], fsetups: dict[str, Any],
               ref: dict[str, dict[int, dict[str, Any]]], E: int, wd: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    a = R.args
    _, s, c = metric.split(".")
    cviews = onl.CASES[c]["views"]
    print(f"\n[{metric}] HTTP, {onl.CASES[c]['entities']} entity x {onl.CASES[c]['layout']}, "
          f"{a.server_workers} worker(s)", flush=True)
    base = {"store": s, "redis": a.redis, "views": cviews, "entities_per_request": onl.CASES[c]["entities"],
            "entities": E, "seed": a.seed, "workers": a.server_workers, "seq_requests": 5_000,
            "seq_budget_s": 6.0, "conc_connections": a.server_connections, "conc_requests": 10**7,
            "conc_budget_s": 3.0}  # = bench/server.py --quick: 5,000 sequential (<= 6 s), 3 s closed loop
    samples: dict[str, Any] = {}
    own_checks: list[bool] = []  # bench/server.py's own check (server answer == SDK answer)
    raw_checks: list[bool] = []  # bench/raw_server.py: every sampled record found (non-null)
    sides = ["skewless"] + (["raw"] if s == "redis" else []) + (["feast"] if s in fsetups else [])
    skipped = False
    for r in range(a.repeat):
        for side in rotate(sides, r):
            what = {"metric": metric, "side": side, "round": r}
            if side == "raw":
                t = time.perf_counter()
                try:
                    import raw_server
                    res = raw_server.measure_for_compare({**base, "case": c, "round": r, "work": str(wd / "raw-server"),
                                                          "project": setups[s]["config"]["project"]})
                except Exception as e:  # noqa: BLE001 - report and go on with the other sides
                    R.failed = True
                    R.runs.append({**what, "error": repr(e)[-2000:]})
                    print(f"    {metric} raw: FAILED {e!r}"[:700], flush=True)
                    continue
                res = {**norm_server(res), **what, "child_s": time.perf_counter() - t,
                       "background_cores": float("nan")}
                R.runs.append(res)
                raw_checks.append(bool(res["check"]["ok"]))
                if r == 0 and res.get("sample"):
                    samples["raw"] = res["sample"]
            elif side == "skewless":
                if skipped:
                    continue
                t = time.perf_counter()
                try:
                    res, note = skewless_server({**base, "case": c, "round": r, "repo": setups[s]["repo"],
                                                 "config": setups[s]["config"]}, a.scale, a.data_dir)
                except Exception as e:  # noqa: BLE001 - report and go on with Feast's side
                    res, note = None, f"bench/server.py {SERVER_HOOK} failed: {e!r}"
                if res is None:
                    skipped = True
                    R.notes.append(f"{metric}: {note}")
                    print(f"  skewless: {note}", flush=True)
                    continue
                res = {**norm_server(res), **what, "child_s": time.perf_counter() - t,
                       "background_cores": float("nan")}
                R.runs.append(res)
                if r == 0 and res.get("sample"):
                    samples["skewless"] = res["sample"]
                if res.get("check") is not None:
                    own_checks.append(bool(res["check"].get("ok")))
            else:
                fj = {**base, "round": r, "repo": fsetups[s]["repo"]}
                if r == 0:
                    fj["check_out"] = str(wd / f"feast-server-sample-{s}-{c}.json")
                res = R.feast("server", fj, what)
                if res is None:
                    continue
                if r == 0 and Path(fj["check_out"]).exists():
                    samples["feast"] = json.loads(Path(fj["check_out"]).read_text())
            sq, cc = res["sequential"], res["concurrent"]
            print(f"  round {r + 1}: {side:<8} sequential p50 {sq['latency']['p50']:7.0f} p99 {sq['latency']['p99']:7.0f} us "
                  f"({sq['rps']:.0f} req/s)  {cc['connections']} connections: {cc['rps']:6.0f} req/s "
                  f"p99 {cc['latency']['p99'] / 1000:6.1f} ms statuses {cc['statuses']}", flush=True)
    chk: dict[str, Any] = {"sides": [check_online_sample(k, v, cviews, ref) for k, v in samples.items()]}
    chk["skewless_server_own_check"] = {"runs": len(own_checks), "ok": all(own_checks)}
    chk["raw_server_check"] = {"runs": len(raw_checks), "ok": all(raw_checks)}
    chk["ok"] = (all(x["ok"] for x in chk["sides"] if x["side"] in ("skewless", "raw")) and all(own_checks)
                 and all(raw_checks))
    if raw_checks:
        print(f"  check raw server: every record of 20 sampled requests found ({len(raw_checks)} runs): "
              f"{'ok' if all(raw_checks) else 'FAILED'}", flush=True)
    if own_checks:
        print(f"  check skewless serve answers == FeatureStore.get_online_features (bench/server.py's check, "
              f"{len(own_checks)} runs): {'ok' if all(own_checks) else 'FAILED'}", flush=True)
    for x in chk["sides"]:
        print(f"  check {x['side']:<8} {x['values_checked']:,} served values vs the latest source row: "
              f"{x['differing']} differ", flush=True)
    fr = [x for x in R.runs if x.get("metric") == metric and x.get("side") == "feast" and "error" not in x]
    return chk, {"load_generator": fr[0].get("load_generator") if fr else None,
                 "feast_server_cmd": fr[0].get("server_cmd") if fr else None, **base}


# --------------------------------------------------------------------------------------------
# Summary, table, chart
# --------------------------------------------------------------------------------------------

def med(R: Runner, metric: str, side: str, get: Callable[[dict[str, Any]], float]) -> tuple[float | None, int]:
    vals = [get(x) for x in R.runs if x.get("metric") == metric and x.get("side") == side and "error" not in x]
    vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return (median(vals) if vals else None), len(vals)


def summarize(R: Runner, metrics: list[str], info: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(name: str, unit: str, sk: float | None, fe: float | None, raw: float | None, *, feast_label: str = "",
            raw_label: str = "", higher_better: bool = False, metric: str = "", n: int = 0) -> None:
        rows.append({"metric": metric, "name": name, "unit": unit, "skewless": sk, "feast": fe, "raw": raw,
                     "feast_label": feast_label, "raw_label": raw_label, "higher_better": higher_better,
                     "ratio_feast": (sk / fe) if sk and fe else None,
                     "ratio_raw": (sk / raw) if sk and raw else None, "rounds": n})

    wall = (lambda x: x["wall_s"])
    for m in metrics:
        kind = m.split(".")[0]
        if kind == "pit":
            sc = m.split(".")[1]
            sk, n = med(R, m, "skewless", wall)
            raw, _ = med(R, m, "raw", wall)
            if R.args.skip_feast:
                add(f"pit {sc}: wall s", "s", sk, None, raw, raw_label="raw DuckDB ASOF", metric=m, n=n)
            for fs in () if R.args.skip_feast else ("feast_duckdb", "feast_file"):
                fe, _ = med(R, m, fs, wall)
                add(f"pit {sc}: wall s (Feast {fs.split('_')[1]} store)", "s", sk, fe, raw,
                    feast_label=fs, raw_label="raw DuckDB ASOF", metric=m, n=n)
        elif kind == "materialize":
            st = m.split(".")[1]
            p = info.get("materialize", {}).get("params", {})
            g = (lambda x: x["materialize"]["wall_s"])
            sk, n = med(R, m, "skewless", g)
            add(f"materialize {st}: {p.get('source_rows', 0) / 1e6:g}M rows / {p.get('entities', 0) / 1e3:g}k "
                f"entities, wall s", "s", sk, med(R, m, "feast", g)[0], med(R, m, "raw", g)[0],
                raw_label="raw DuckDB + msgpack + bulk write", metric=m, n=n)
        elif kind == "online":
            _, st, c = m.split(".")
            for p in ("p50", "p99"):
                sk, n = med(R, m, "skewless", lambda x, p=p: x["methods"]["skewless"][p])
                raw, _ = med(R, m, "skewless", lambda x, p=p: x["methods"]["raw"][p])
                fe, _ = med(R, m, "feast", lambda x, p=p: x["methods"]["feast"][p])
                add(f"online {st} {c} ({onl.CASES[c]['layout']}): {p} us", "us", sk, fe, raw,
                    raw_label=onl.raw_label(st, c, "raw"), metric=m, n=n)
        elif kind == "server":
            _, st, c = m.split(".")
            for label, get, hb in (
                    ("sequential p50 us", lambda x: x["sequential"]["latency"]["p50"], False),
                    ("sequential p99 us", lambda x: x["sequential"]["latency"]["p99"], False),
                    (f"{R.args.server_connections} connections req/s (higher is better)",
                     lambda x: x["concurrent"]["rps"], True),
                    (f"{R.args.server_connections} connections p99 ms",
                     lambda x: x["concurrent"]["latency"]["p99"] / 1000, False)):
                sk, n = med(R, m, "skewless", get)
                fe, _ = med(R, m, "feast", get)
                raw, _ = med(R, m, "raw", get)
                add(f"server {st} {c}, {R.args.server_workers} workers: {label}", "", sk, fe, raw, higher_better=hb,
                    raw_label="bench/raw_server.py: ASGI + orjson + one MGET, same uvicorn settings", metric=m, n=n)
    return rows


def fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def render(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    out = []
    for r in rows:
        out.append([r["name"], fmt(r["skewless"]), fmt(r["feast"]), fmt(r["raw"]) if r["raw"] is not None else "-",
                    f"{r['ratio_feast']:.2f}x" if r["ratio_feast"] else "-",
                    f"{r['ratio_raw']:.2f}x" if r["ratio_raw"] else "-"])
    headers = ["metric", "skewless", "Feast", "raw limit", "skewless/Feast", "skewless/limit"]
    cells = [headers] + out
    w = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:  # the metric left-aligned, the figures right-aligned
        parts = [r[0].ljust(w[0])] + [c.rjust(wi) for c, wi in zip(r[1:], w[1:])]
        return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts)
    sep = ("|" + "|".join(["-" * (w[0] + 2)] + ["-" * (wi + 1) + ":" for wi in w[1:]]) + "|") if markdown \
        else "  ".join("-" * wi for wi in w)
    return "\n".join([line(headers), sep] + [line(r) for r in out])


def chart(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Each metric's cost relative to skewless (log scale): Feast and the raw limit; < 1 is
    cheaper than skewless. Throughput rows are inverted (cost = 1 / req/s)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = [r for r in rows if r["skewless"]]
    if not rs:
        return
    labels, feast, raw = [], [], []
    for r in rs:
        inv = r["higher_better"]

        def rel(v: float | None, inv: bool = inv, sk: float = r["skewless"]) -> float:
            if not v:
                return float("nan")
            return (sk / v) if inv else (v / sk)
        labels.append(r["name"].replace(" (higher is better)", " (as 1/x)"))
        feast.append(rel(r["feast"]))
        raw.append(rel(r["raw"]))
    h = 0.38
    fig, ax = plt.subplots(figsize=(13, 0.42 * len(rs) + 1.8))
    ys = list(range(len(rs)))[::-1]
    # bars grow from 1 (= skewless): to the right slower than skewless, to the left faster
    ax.barh([y + h / 2 for y in ys], [x - 1 if x == x else 0 for x in feast], h, left=1.0, label="Feast 0.67",
            color="#d62728")
    ax.barh([y - h / 2 for y in ys], [x - 1 if x == x else 0 for x in raw], h, left=1.0, label="raw limit",
            color="#7f7f7f")
    ax.axvline(1.0, color="#1f77b4", lw=2, label="skewless = 1")
    for y, f, rw in zip(ys, feast, raw):
        for x, dy in ((f, h / 2), (rw, -h / 2)):
            if x == x:
                ax.text(x * 1.04 if x >= 1 else x / 1.04, y + dy, f"{x:.2f}x", va="center", fontsize=7,
                        ha="left" if x >= 1 else "right")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=7.5)
    ax.set_xscale("log")
    ax.set_xlabel("time (or 1/throughput) relative to skewless, log scale: > 1 = slower than skewless")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    vals = [x for x in feast + raw if x == x and x > 0] + [1.0]
    ax.set_xlim(min(vals) / 1.6, max(vals) * 1.6)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=sorted(SCALES), default="S",
                   help="S: 1M feature rows per view; M: 10M; L: 100M (default S)")
    p.add_argument("--skip-feast", action="store_true", help="skewless and the raw limit only")
    p.add_argument("--only", help=f"comma-separated metrics or prefixes of: {', '.join(METRICS)}")
    p.add_argument("--repeat", type=int, default=3, help="rounds per metric; medians reported (default 3)")
    p.add_argument("--server-workers", type=int, default=2, help="HTTP server workers, both sides (default 2)")
    p.add_argument("--server-connections", type=int, default=32,
                   help="connections of the concurrent (closed-loop) HTTP run (default 32, as in issue 4)")
    add_run_args(p, timeout=1800.0, quiet_timeout=60.0)
    p.add_argument("--render", type=Path, metavar="RESULTS_JSON", help="print an earlier run's table as Markdown")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        d = json.loads(args.render.read_text())
        print(render(d["summary"], markdown=True))
        return 0
    host = args.redis.split(":")[0]
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("--redis must be a loopback address: every load loop targets loopback only")
    metrics = selected(args.only)
    if not args.skip_feast and not FEAST_PY.exists():
        raise SystemExit(f"{FEAST_PY} not found: run `make bench-feast` (it creates the Feast venv) "
                         "or pass --skip-feast")
    R = Runner(args)
    machine = machine_info()
    feast_versions: dict[str, Any] = {}
    if not args.skip_feast:
        proc = subprocess.run([str(FEAST_PY), str(RUNNER), "versions"], capture_output=True, text=True, timeout=120)
        feast_versions = json.loads(proc.stdout.strip().splitlines()[-1])
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    print(f"compare: scale {args.scale}, {args.repeat} rounds, metrics {', '.join(metrics)}"
          + ("" if args.skip_feast else f"; Feast {feast_versions.get('feast')}"))
    print(f"machine: {machine['nproc']} cores, {machine['ram_gib']} GiB, {machine['cpu']}; python {machine['python']}, "
          f"duckdb {machine['duckdb']}, pandas {machine['pandas']}", flush=True)
    git0 = git_state()
    t0 = time.perf_counter()
    work = args.data_dir / f"compare-work-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    info: dict[str, Any] = {}
    try:
        groups = [("pit", run_pit), ("materialize", run_materialize), ("online", run_online)]
        for name, fn in groups:
            ms = [m for m in metrics if m.split(".")[0] == name or (name == "online" and m.startswith("server."))]
            if ms:
                info[name] = fn(R, ms, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = summarize(R, metrics, info)
    total = time.perf_counter() - t0
    print()
    print(render(rows))
    print()
    print("skewless/Feast and skewless/limit < 1: skewless takes less time (for req/s: > 1 = more throughput).")
    checks_ok = all(c.get("ok", True) for g in info.values() for c in g.get("checks", {}).values())
    print(f"correctness: {'skewless agrees with the raw reference everywhere' if checks_ok else 'FAILED, see above'}"
          + ("" if args.skip_feast else "; Feast's differences are listed above"))
    for n in R.notes:
        print(f"note: {n}")
    git1 = end_git_state(git0)
    print(f"total {total:.0f} s")
    out = write_results(args.results_dir, "compare", {
        "machine": machine,
        "feast_versions": feast_versions, "git": {"start": git0, "end": git1},
        "params": {"scale": args.scale, "repeat": args.repeat, "skip_feast": args.skip_feast, "metrics": metrics,
                   "seed": args.seed, "redis": args.redis, "server_workers": args.server_workers,
                   "server_connections": args.server_connections, "wait_quiet": args.wait_quiet,
                   **{k: v.get("params") for k, v in info.items()}},
        "summary": rows, "checks": {k: v.get("checks") for k, v in info.items()},
        "server": info.get("online", {}).get("server"), "notes": R.notes, "runs": R.runs, "total_s": total},
        stamp=stamp)
    png = out.with_suffix(".png")
    try:
        chart(rows, png, f"skewless vs Feast {feast_versions.get('feast', '(skipped)')} vs raw limit, scale "
                         f"{args.scale}, {machine['nproc']} cores ({stamp})")
        print(f"results: {out}\nchart:   {png}")
    except Exception as e:  # noqa: BLE001 - the JSON is the record; a chart failure is reported
        print(f"results: {out}\nchart failed: {e!r}")
    return 0 if checks_ok and not R.failed else 1


if __name__ == "__main__":
    sys.exit(main())
