"""Monitoring benchmarks (issue 14): feature logging's cost on the feature server, and the skew
audit's speed. Each part is a function in ``PARTS``; ``--part`` picks them (default: all).

    .venv/bin/python bench/monitor.py                      # every part
    .venv/bin/python bench/monitor.py --part logging       # server p99 / throughput, logging on vs off
    .venv/bin/python bench/monitor.py --part audit         # 1M logged rows x 10 features
    .venv/bin/python bench/monitor.py --part audit --audit-rows 200000 --quick

``logging``: the data of ``bench/online.py`` (view ``o_w0``: 10 features, no TTL), a
FeatureService over it, materialized into Redis (or SQLite with ``--online sqlite``).
``skewless serve`` is started with ``logging.sample_rate`` 0 (off: no hook) and 1.0 (every
request logged), alternately for ``--rounds`` rounds, each round on a fresh server; the load
generator (``bench/_load.py``, its own process) runs an open loop of one-entity requests by
feature service at 1,000 req/s (p50/p99, achieved rate, errors), then a closed loop at 32
connections (the throughput). Figures are the median over rounds, side by side, with the
ratio on/off. Target: logging adds at most 5% to the p99 and takes at most 5% of the
throughput. The logged rows are counted after each "on" server stops (every request answered
must be on disk: the shutdown writes the queue).

``audit``: the same view in SQLite, logging on; ``--audit-rows`` rows (1,000,000) logged
through the real SDK online path (requests of 1,000 entities, the store's clock one second
apart per request), then ``FeatureStore.audit`` over them, timed, with its parts (reading the
logs, the offline join of all the rows, the comparison). The logs being healthy, the audit
must find no mismatch. Target: at most 30 s.

Results: a table per part on stdout and ``bench/results/monitor-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import format_table, git_state, machine_info  # noqa: E402
from online import KEY, NOW, TS, data_dir, ensure_data, feature_names  # noqa: E402
from server import ServerProcess, measure  # noqa: E402

HERE = Path(__file__).resolve().parent
VIEW = "o_w0"
SERVICE = "monitor_svc"
TARGETS = {"logging_p99_added": 0.05, "logging_throughput_lost": 0.05, "audit_seconds": 30.0}


def definitions(path: Path, logging: Any = None) -> list[Any]:
    from skewless import Entity, FeatureService, FeatureView, Field, FileSource
    from skewless import types as T

    entity = Entity(name="entity", join_keys=[KEY])
    view = FeatureView(
        name=VIEW, entities=[entity], ttl=None,
        schema=[Field(name=KEY, dtype=T.Int64)] + [Field(name=f, dtype=getattr(T, t)) for f, t in feature_names(VIEW)],
        source=FileSource(path=str(path), timestamp_field=TS, name=f"{VIEW}_src"))
    return [entity, view, FeatureService(SERVICE, [view], logging_config=logging)]


def write_config(repo: Path, project: str, online: str, redis: str, logging: dict[str, Any]) -> None:
    import yaml

    store = ({"type": "sqlite", "path": str(repo / "online.db")} if online == "sqlite"
             else {"type": "redis", "connection_string": redis})
    (repo / "feature_store.yaml").write_text(yaml.safe_dump({
        "project": project, "registry": str(repo / "registry.db"), "offline_store": {"type": "duckdb"},
        "online_store": store, "logging": logging}))


def _logged_rows(repo: Path) -> int:
    from skewless import FeatureStore
    return int(FeatureStore(repo).read_feature_logs(SERVICE).num_rows)


# --- part: logging ------------------------------------------------------------------------------
def sdk_cpu(repo: Path, project: str, args: argparse.Namespace, n: int) -> dict[str, Any]:
    """CPU seconds per request of ``n`` one-entity reads by feature service through the SDK,
    logging off vs on, alternately in rounds; ``time.process_time`` counts every thread of the
    process (the writer thread's Arrow and Parquet work included, flushed before the clock
    stops). CPU time barely depends on other processes' load, unlike latency."""
    from skewless import FeatureStore

    rng = random.Random(args.seed)
    rows = [[{KEY: rng.randrange(args.entities)}] for _ in range(n)]
    per: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for mode, rate in (("off", 0.0), ("on", 1.0)):
            write_config(repo, project, args.online, args.redis,
                         {"sample_rate": rate, "flush_interval_seconds": 1.0})
            fs = FeatureStore(repo)
            fs.serving_snapshot()
            for r in rows[:500]:
                fs.get_online_features(features=SERVICE, entity_rows=r)
            assert fs.flush_feature_logs()
            t = time.process_time()
            for r in rows:
                fs.get_online_features(features=SERVICE, entity_rows=r)
            assert fs.flush_feature_logs(120)
            per[mode].append((time.process_time() - t) / n)
            fs.close()
            fs.online_store.close()
    off, on = statistics.median(per["off"]), statistics.median(per["on"])
    return {"requests": n, "cpu_us_off": off * 1e6, "cpu_us_on": on * 1e6, "added": on / off - 1,
            "rounds": per}


def part_logging(args: argparse.Namespace) -> dict[str, Any]:
    from skewless import FeatureStore
    from skewless.online import table_name

    E = args.entities
    paths = ensure_data(args.data_dir, E, args.seed, [VIEW])
    project = f"bench_monitor_{uuid.uuid4().hex[:8]}"
    work = data_dir(args.data_dir, E, args.seed) / f"work-{project}"
    repo = work / "repo"
    repo.mkdir(parents=True)
    secs = 4.0 if args.quick else 10.0
    rng = random.Random(args.seed)
    pool = [json.dumps({"feature_service": SERVICE, "entities": {KEY: [rng.randrange(E)]}}) for _ in range(2000)]
    out: dict[str, Any] = {"entities": E, "online": args.online, "workers": args.workers, "rate": args.rate,
                           "seconds": secs, "rounds": args.rounds, "runs": []}
    try:
        write_config(repo, project, args.online, args.redis, {"sample_rate": 0.0})
        fs = FeatureStore(repo)
        fs.apply(definitions(paths[VIEW]))
        fs.materialize_incremental()
        fs.online_store.close()
        print(f"logging: {E:,} entities of {VIEW} (10 features) in {args.online}; "
              f"{args.workers} worker(s); {args.rounds} round(s) of off/on", flush=True)
        out["sdk_cpu"] = sdk = sdk_cpu(repo, project, args, 5_000 if args.quick else 20_000)
        print(f"  SDK, CPU per one-entity read by service (all threads): off {sdk['cpu_us_off']:.1f} us, "
              f"on {sdk['cpu_us_on']:.1f} us: +{sdk['added']:.1%}", flush=True)
        shutil.rmtree(repo / "data" / "feature_logs", ignore_errors=True)
        for r in range(0 if args.skip_server else args.rounds):
            for mode, rate in (("off", 0.0), ("on", 1.0)):
                shutil.rmtree(repo / "data" / "feature_logs", ignore_errors=True)
                write_config(repo, project, args.online, args.redis,
                             {"sample_rate": rate, "flush_interval_seconds": 1.0})
                server = ServerProcess(repo, args.workers, work / f"server-{mode}-{r}.log")
                try:
                    server.wait_ready()
                    base = {"url": server.url, "path": "/get-online-features", "bodies": pool}
                    measure({**base, "mode": "sequential", "count": 2000, "max_seconds": 5, "warmup": 500})
                    open_ = measure({**base, "mode": "open", "rate": args.rate, "connections": 32,
                                     "count": 10**7, "max_seconds": secs})
                    closed = measure({**base, "mode": "closed", "concurrency": 32, "count": 10**7,
                                      "max_seconds": secs, "warmup_seconds": 1.0})
                finally:
                    server.stop()
                served = open_["requests"] + closed["requests"]
                logged = _logged_rows(repo) if mode == "on" else 0
                run = {"mode": mode, "round": r, "open_p50_ms": open_["p50_ms"], "open_p99_ms": open_["p99_ms"],
                       "open_rps": open_["rps"], "open_errors": open_["errors"], "closed_rps": closed["rps"],
                       "closed_p99_ms": closed["p99_ms"], "closed_errors": closed["errors"],
                       "busy_cores": open_["machine_busy_cores"], "logged_rows": logged, "served": served}
                out["runs"].append(run)
                print(f"  round {r} logging {mode:<3}  open {args.rate}/s: p50 {run['open_p50_ms']:.3f} "
                      f"p99 {run['open_p99_ms']:.3f} ms, {run['open_rps']:,.0f} req/s, errors {run['open_errors']}; "
                      f"closed c=32: {run['closed_rps']:,.0f} req/s; logged rows {logged:,}", flush=True)
    finally:
        try:
            fs = FeatureStore(repo)
            fs.online_store.drop([table_name(project, VIEW)])
            fs.online_store.close()
        except Exception as e:  # noqa: BLE001 - report, keep the results
            print(f"  warning: could not drop the bench table: {e}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    sdk = out["sdk_cpu"]
    sdk_row = ["SDK CPU us/request", f"{sdk['cpu_us_off']:.1f}", f"{sdk['cpu_us_on']:.1f}", f"{1 + sdk['added']:.3f}"]
    if not out["runs"]:
        out["verdicts"] = [{"target": "(diagnostic) SDK CPU per request added by logging",
                            "value": sdk["added"], "ok": True}]
        out["table"] = format_table(["figure", "off", "on", "on/off"], [sdk_row])
        return out

    def med(mode: str, key: str) -> float:
        return statistics.median(x[key] for x in out["runs"] if x["mode"] == mode)

    summary = {m: {k: med(m, k) for k in ("open_p50_ms", "open_p99_ms", "open_rps", "closed_rps", "closed_p99_ms")}
               for m in ("off", "on")}
    p99_added = summary["on"]["open_p99_ms"] / summary["off"]["open_p99_ms"] - 1
    lost = 1 - summary["on"]["closed_rps"] / summary["off"]["closed_rps"]
    out["summary"] = summary
    out["p99_added"] = p99_added
    out["throughput_lost"] = lost
    out["verdicts"] = [
        {"target": "(diagnostic) SDK CPU per request added by logging", "value": out["sdk_cpu"]["added"],
         "ok": True},
        {"target": f"p99 at {args.rate} req/s added by logging <= 5%", "value": p99_added,
         "ok": p99_added <= TARGETS["logging_p99_added"]},
        {"target": "throughput lost to logging <= 5%", "value": lost,
         "ok": lost <= TARGETS["logging_throughput_lost"]},
        {"target": "every request served while logging is on is logged (open and closed runs)",
         "value": [(x["logged_rows"], x["served"]) for x in out["runs"] if x["mode"] == "on"],
         "ok": all(x["served"] is None or x["logged_rows"] >= x["served"] for x in out["runs"] if x["mode"] == "on")},
    ]
    rows = [[m, f"{summary[m]['open_p50_ms']:.3f}", f"{summary[m]['open_p99_ms']:.3f}",
             f"{summary[m]['open_rps']:,.0f}", f"{summary[m]['closed_rps']:,.0f}",
             f"{summary[m]['closed_p99_ms']:.3f}"] for m in ("off", "on")]
    rows.append(["on/off", "", f"{1 + p99_added:.3f}", "", f"{1 - lost:.3f}", ""])
    out["table"] = (format_table(["figure", "off", "on", "on/off"], [sdk_row]) + "\n\n" + format_table(
        ["logging", f"p50 ms @{args.rate}/s", f"p99 ms @{args.rate}/s", "req/s", "closed req/s",
         "closed p99 ms"], rows))
    return out


# --- part: audit --------------------------------------------------------------------------------
def part_audit(args: argparse.Namespace) -> dict[str, Any]:
    from skewless import FeatureStore
    from skewless.monitoring import feature_log as FL

    E = args.entities
    paths = ensure_data(args.data_dir, E, args.seed, [VIEW])
    work = data_dir(args.data_dir, E, args.seed) / f"work-audit-{uuid.uuid4().hex[:8]}"
    repo = work / "repo"
    repo.mkdir(parents=True)
    n_rows, batch = args.audit_rows, 1000
    requests = n_rows // batch
    start = NOW - timedelta(seconds=requests)
    clock = [NOW]
    out: dict[str, Any] = {"rows": n_rows, "features": len(feature_names(VIEW)), "entities": E}
    try:
        write_config(repo, "bench_audit", "sqlite", "", {
            "sample_rate": 1.0, "queue_size": 100_000, "flush_rows": 250_000, "flush_interval_seconds": 60})
        fs = FeatureStore(repo, clock=lambda: clock[0])
        fs.apply(definitions(paths[VIEW]))
        fs.materialize(None, start)     # every event is before the first request
        fs.serving_snapshot()
        rng = random.Random(args.seed)
        t = time.perf_counter()
        for i in range(requests):
            clock[0] = start + timedelta(seconds=i)
            fs.get_online_features(features=SERVICE,
                                   entity_rows=[{KEY: rng.randrange(E)} for _ in range(batch)])
        serve_s = time.perf_counter() - t
        assert fs.flush_feature_logs(600), "the feature log did not flush"
        logger = fs.feature_logger
        out["log"] = {"serve_and_queue_seconds": serve_s, "logged": logger.logged, "dropped": logger.dropped,
                      "files": logger.files, "written_rows": logger.written_rows}
        print(f"audit: logged {logger.written_rows:,} rows ({logger.files} files, {logger.dropped} dropped) "
              f"through the online path in {serve_s:.1f} s", flush=True)
        clock[0] = NOW
        # the parts, timed on their own (the audit does each once)
        t = time.perf_counter()
        logs = FL.read_feature_logs(fs.config, SERVICE, NOW - timedelta(days=1), NOW + timedelta(seconds=1))
        read_s = time.perf_counter() - t
        entity = logs.select([KEY]).append_column("event_timestamp", logs["__log_timestamp"])
        t = time.perf_counter()
        fs.get_historical_features(entity, features=SERVICE, full_feature_names=True).to_arrow()
        hist_s = time.perf_counter() - t
        del logs, entity
        t = time.perf_counter()
        report = fs.audit(SERVICE, since="1d", until=NOW + timedelta(seconds=1))
        audit_s = time.perf_counter() - t
        fs.close()
        mism = {f.feature: f.mismatch_rate for f in report.features if f.mismatch_rate}
        out.update({"audit_seconds": audit_s, "read_logs_seconds": read_s, "historical_seconds": hist_s,
                    "audited_rows": report.rows, "compared_features": len(report.features),
                    "mismatches": mism, "failed": report.failed})
        print(f"  audit of {report.rows:,} rows x {len(report.features)} features: {audit_s:.1f} s "
              f"(reading the logs {read_s:.1f} s, offline join {hist_s:.1f} s); mismatches: {mism or 'none'}",
              flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["verdicts"] = [
        {"target": f"audit of {n_rows:,} logged rows x 10 features <= 30 s", "value": out.get("audit_seconds"),
         "ok": out.get("audit_seconds", 1e9) <= TARGETS["audit_seconds"]},
        {"target": "healthy logs: no mismatch", "value": out.get("mismatches"),
         "ok": out.get("mismatches") == {} and out.get("audited_rows") == n_rows},
    ]
    out["table"] = format_table(
        ["rows", "features", "audit s", "read logs s", "offline join s", "mismatches"],
        [[f"{out.get('audited_rows', 0):,}", out.get("compared_features"), f"{out.get('audit_seconds', 0):.1f}",
          f"{out.get('read_logs_seconds', 0):.1f}", f"{out.get('historical_seconds', 0):.1f}",
          len(out.get("mismatches") or {})]])
    return out


PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "logging": part_logging,
    "audit": part_audit,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", action="append", choices=sorted(PARTS),
                   help="run this part (repeatable; default: every part)")
    p.add_argument("--entities", type=int, default=10_000, help="entities of the view")
    p.add_argument("--online", choices=("redis", "sqlite"), default="redis", help="online store of the logging part")
    p.add_argument("--redis", default="127.0.0.1:6379")
    p.add_argument("--workers", type=int, default=1, help="server workers of the logging part")
    p.add_argument("--rate", type=int, default=1000, help="open-loop request rate of the logging part")
    p.add_argument("--rounds", type=int, default=3, help="off/on rounds of the logging part")
    p.add_argument("--skip-server", action="store_true", help="logging part: the SDK CPU figures only")
    p.add_argument("--audit-rows", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="shorter load runs")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-dir", type=Path, default=HERE / "data")
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    out: dict[str, Any] = {"benchmark": "monitor", "started": datetime.now(timezone.utc).isoformat(),
                           "machine": machine_info(), "git": git_state(), "targets": TARGETS, "parts": {}}
    for name in args.part or list(PARTS):
        out["parts"][name] = PARTS[name](args)
    out["finished"] = datetime.now(timezone.utc).isoformat()
    ok = True
    for name, res in out["parts"].items():
        print(f"\n{name}:\n{res['table']}")
        for v in res["verdicts"]:
            ok &= bool(v["ok"])
            value = f"{v['value']:.3f}" if isinstance(v["value"], float) else v["value"]
            print(f"  [{'ok' if v['ok'] else 'MISSED'}] {v['target']}: {value}")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"monitor-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nresults: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
