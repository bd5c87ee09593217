"""The seed's incident, replayed and caught: the same day of fraud-scoring traffic served by two
feature repos, then audited and monitored with the ``skewless`` CLI.

For each repo (``skewed/``, ``declared_once/``), in ``WORKDIR/<repo>``:

1. generate the data (``generate.py``: 120 days of transactions up to now, a fraud spike in
   ``electronics`` over the last 14 days) and apply the definitions (as ``skewless apply``);
2. run the jobs the team runs, each at its own time on the store's clock: the weekly job that
   pushes the category risk table online (skewed repo only), and the daily materialization of
   the batch features, at the start of the day of traffic and at each 00:00 within it;
3. serve the last 24 hours of transactions, one ``get_online_features`` of the ``fraud_model``
   service per transaction at its own time (the store's clock is set to it, so the feature log
   records it as the request time), with feature logging on (``sample_rate=1.0``); the
   declared-once repo pushes each transaction after scoring it (the event stream its
   aggregation reads);
4. run ``skewless audit --service fraud_model --since 1d`` and ``skewless monitor`` on the repo
   (side by side, while the next repo is served) and print what they print (their JSON goes
   to ``WORKDIR/<repo>/audit.json`` and ``monitor.json``).

Expected: the skewed repo's audit flags ``merchant_category_risk:merchant_category_risk_score``
and only it, worst for the ``electronics`` merchants; the declared-once repo's shows no
mismatch at all.

Run: ``python run.py [WORKDIR] [--now ISO] [--variant skewed|declared_once]``; WORKDIR defaults
to a new temporary directory. Exits 0 once both runs are done (the audit's own exit code,
1 when a threshold is crossed, is printed, not propagated).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import Generated, day_floor, generate  # noqa: E402

from skewless import FeatureStore  # noqa: E402
from skewless.data_source import PushMode  # noqa: E402
from skewless.testing.clock import Clock  # noqa: E402

VARIANTS = ("skewed", "declared_once")
SERVICE = "fraud_model"
PLAIN_VIEWS = ["customer_stats", "merchant_stats"]
# what each repo reads from the generated tables: (generated path, path under the repo's data/)
DATA = {
    "skewed": [("customer_stats.parquet", "customer_stats.parquet"),
               ("merchant_stats.parquet", "merchant_stats.parquet"),
               ("category_risk_daily", "category_risk_daily")],
    "declared_once": [("customer_stats.parquet", "customer_stats.parquet"),
                      ("merchant_stats.parquet", "merchant_stats.parquet"),
                      ("transactions", "transactions")],
}


def cli(repo: Path, *args: str) -> subprocess.Popen[str]:
    """``skewless ARGS --repo REPO`` as a user runs it (``python -m skewless.cli``), started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKEWLESS_")}
    env.setdefault("COLUMNS", "160")
    return subprocess.Popen([sys.executable, "-m", "skewless.cli", *args, "--repo", str(repo)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def setup(variant: str, workdir: Path, generated_dir: Path) -> Path:
    """The variant's feature repo in ``workdir/<variant>``, with its data, applied."""
    repo = workdir / variant
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(HERE / variant, repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    for src, dst in DATA[variant]:
        target = repo / "data" / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (generated_dir / src).is_dir() else shutil.copy)(generated_dir / src, target)
    store = FeatureStore(repo)
    store.apply_repo(store.load_repo())                  # what `skewless apply` does
    return repo


def serve_a_day(variant: str, repo: Path, gen: Generated, generated_dir: Path) -> dict[str, Any]:
    """Run the team's jobs and serve the day of traffic on the store's clock; returns figures."""
    clock = Clock(gen.traffic_start)
    store = FeatureStore(repo, clock=clock)
    started = time.perf_counter()
    if variant == "skewed":
        # the weekly job: the 90-day rate of each category as of its run, pushed online only
        weekly = pd.read_parquet(generated_dir / "category_risk_weekly.parquet")
        for refresh in gen.refreshes:
            clock.now = refresh
            rows = weekly[weekly["event_timestamp"] == pd.Timestamp(refresh)]
            store.push("category_risk_weekly", rows, to=PushMode.ONLINE)
        daily_views: list[str] | None = PLAIN_VIEWS     # the risk view is never materialized
    else:
        daily_views = None                               # every view, the aggregation's too
    traffic = pd.read_parquet(generated_dir / "traffic.parquet")
    boundaries = [gen.traffic_start] + [
        day_floor(gen.traffic_start) + timedelta(days=i)
        for i in range(1, 3) if day_floor(gen.traffic_start) + timedelta(days=i) < gen.now]
    next_boundary = 0
    service = store.get_feature_service(SERVICE)
    served = 0
    for row in traffic.itertuples(index=False):
        at = row.event_timestamp.to_pydatetime()
        while next_boundary < len(boundaries) and boundaries[next_boundary] <= at:
            clock.now = boundaries[next_boundary]        # the daily materialization job
            store.materialize_incremental(views=daily_views)
            next_boundary += 1
        clock.now = at
        store.get_online_features(features=service, entity_rows=[{
            "customer_id": int(row.customer_id), "merchant_id": int(row.merchant_id),
            "merchant_category": str(row.merchant_category)}])
        served += 1
        if variant == "declared_once":                   # the transaction joins the event stream
            store.push("transactions", pd.DataFrame([row._asdict()]), to=PushMode.ONLINE_AND_OFFLINE)
    dropped = store.feature_logger.dropped if store.feature_logger is not None else 0
    store.close()                                        # writes the queued feature log rows
    return {"requests": served, "dropped": dropped, "seconds": round(time.perf_counter() - started, 1)}


def audit_and_monitor(repo: Path, window: list[str]) -> dict[str, tuple[list[str], subprocess.Popen[str]]]:
    """Start ``skewless audit`` (over ``window``: ``--since ...`` and maybe ``--until ...``)
    and ``skewless monitor`` on the repo, side by side (each writes its own files only)."""
    audit = ["audit", "--service", SERVICE, *window]
    return {"audit": (audit, cli(repo, *audit, "--json", str(repo / "audit.json"))),
            "monitor": (["monitor"], cli(repo, "monitor", "--json", str(repo / "monitor.json")))}


def report(repo: Path, started: dict[str, tuple[list[str], subprocess.Popen[str]]]) -> dict[str, Any]:
    """Wait for the commands ``audit_and_monitor`` started; print what they printed; their
    exit codes and JSON reports."""
    out: dict[str, Any] = {}
    for name, (args, proc) in started.items():
        stdout, stderr = proc.communicate(timeout=600)
        print(f"\n$ skewless {' '.join(args)}   # exit {proc.returncode}")
        print(stdout.rstrip())
        if stderr.strip():
            print(stderr.rstrip(), file=sys.stderr)
        path = repo / f"{name}.json"
        out[name] = {"exit": proc.returncode, "report": json.loads(path.read_text()) if path.exists() else None}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", nargs="?", help="where to build the repos (default: a new temp dir)")
    parser.add_argument("--now", help="ISO time the data ends at (default: the current time); the "
                                      "audit then replays the day before it (--since/--until), the "
                                      "monitor still runs at the current time")
    parser.add_argument("--variant", choices=VARIANTS, action="append",
                        help="run only this repo (repeatable; default: both)")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="skew_incident_")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    now = (datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now
           else datetime.now(timezone.utc))
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    # the audit's window: the last day by the wall clock, or the day before a pinned --now
    window = (["--since", "1d"] if args.now is None else
              ["--since", (now - timedelta(days=1)).isoformat(), "--until", now.isoformat()])
    generated_dir = workdir / "generated"
    gen = generate(generated_dir, now)
    print(f"data: {gen.rows['transactions.parquet']:,} transactions up to {gen.now:%Y-%m-%d %H:%M} UTC, "
          f"{gen.rows['traffic.parquet']:,} in the last 24 h (the traffic); weekly risk table "
          f"last pushed {gen.refreshes[-1]:%Y-%m-%d %H:%M}; in {workdir}")
    summary: dict[str, Any] = {"workdir": str(workdir), "now": gen.now.isoformat()}
    runs = {}
    for variant in args.variant or VARIANTS:       # each repo's audit and monitor start once it is served
        repo = setup(variant, workdir, generated_dir)
        served = serve_a_day(variant, repo, gen, generated_dir)
        runs[variant] = (repo, served, audit_and_monitor(repo, window))
    for variant, (repo, served, started) in runs.items():
        print(f"\n===== {variant} " + "=" * (60 - len(variant)))
        print(f"served {served['requests']:,} requests of '{SERVICE}' with feature logging on "
              f"({served['seconds']} s; {served['dropped']} dropped by the log queue)")
        summary[variant] = {**served, **report(repo, started)}
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
