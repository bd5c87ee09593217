"""Helpers shared by the benchmarks under bench/: memory and machine facts, child processes,
medians and plain-text tables. Standard library only, so importing it costs nothing."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

GIB = 1024 ** 3


def _status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (``VmHWM``, ``VmRSS``), in bytes; 0 if unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes.

    ``VmHWM`` belongs to the process's own address space, so unlike ``ru_maxrss`` it does not
    inherit the RSS of the parent at fork/exec time. Falls back to ``ru_maxrss`` elsewhere.
    """
    hwm = _status_kib("VmHWM")
    if hwm:
        return hwm
    import resource
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def current_rss() -> int:
    return _status_kib("VmRSS")


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_child(argv: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """Run a measuring child process; it prints one JSON object as its last stdout line.

    Adds ``background_cores``: the CPU that *other* processes used while the child ran, in
    cores on average (machine-wide busy time minus the child's own). Near 0 on a quiet machine;
    anything sizeable means the timings of that run are inflated by contention.
    """
    busy0, kids0, t0 = system_busy_seconds(), children_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - t0
    other = (system_busy_seconds() - busy0) - (children_cpu_seconds() - kids0)
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(argv[-6:])} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError(f"child printed nothing; stderr:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["background_cores"] = max(0.0, other) / elapsed if elapsed > 0 else 0.0
    return result


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def total_ram() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "ram_gib": round(total_ram() / GIB, 1),
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for mod in ("duckdb", "pyarrow", "pandas", "numpy"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    try:
        from importlib.metadata import version
        info["skewless"] = version("skewless")
    except Exception:  # noqa: BLE001 - informational only
        info["skewless"] = None
    return info


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], markdown: bool = False) -> str:
    """Left-aligned text columns, right-aligned numbers; a GitHub table when ``markdown``."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) for r in cells[1:] if r[i]) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)]
        return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts).rstrip()

    out = [line(cells[0])]
    if markdown:
        out.append("|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                                  for w, num in zip(widths, numeric)) + "|")
    else:
        out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out)


def _is_number(s: str) -> bool:
    try:
        float(s.rstrip("x"))
        return True
    except ValueError:
        return False


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far."""
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def system_busy_seconds() -> float:
    """CPU seconds all processes have spent busy since boot (/proc/stat; 0 if unavailable)."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in parts]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's finished children."""
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def background_cores(sample_s: float = 1.0) -> float:
    """CPU used by all processes over ``sample_s`` seconds (this one sleeps), in cores."""
    b0 = system_busy_seconds()
    time.sleep(sample_s)
    return max(0.0, system_busy_seconds() - b0) / sample_s


def wait_until_quiet(threshold: float, max_wait_s: float) -> tuple[float, float]:
    """Sleep until the machine's other load drops to ``threshold`` cores, or ``max_wait_s``
    passes. Returns (load seen last, seconds waited)."""
    t0 = time.perf_counter()
    load = background_cores()
    while load > threshold and time.perf_counter() - t0 < max_wait_s:
        load = background_cores()
    return load, time.perf_counter() - t0


def git_state() -> dict[str, Any]:
    """The commit measured, and whether src/ differed from it (results are per code version)."""
    import subprocess
    root = Path(__file__).resolve().parent.parent

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD"), "src_tree": git("rev-parse", "HEAD:src"),
            "src_dirty": bool(git("status", "--porcelain", "--", "src"))}


def interleaved_latencies(methods: dict[str, Any], names: Sequence[str], pool: int, iters: int,
                          block: int, budget_s: float) -> dict[str, Any]:
    """Time ``methods[m](i)`` one call at a time, in blocks of ``block`` calls per method,
    rotating the order each round so drift hits every method alike; stops at ``iters`` calls
    per method or ``budget_s``. Returns the latencies (ns) cut to the same count, the elapsed
    time and the number of garbage collections during the loop."""
    import gc
    lat: dict[str, list[int]] = {m: [] for m in names}
    clock = time.perf_counter_ns
    gc0 = sum(st["collections"] for st in gc.get_stats())
    t_start = time.perf_counter()
    pos = {m: 0 for m in names}
    b = 0
    while min(len(v) for v in lat.values()) < iters and time.perf_counter() - t_start < budget_s:
        for m in list(names[b % len(names):]) + list(names[:b % len(names)]):
            fn, out, i = methods[m], lat[m], pos[m]
            for _ in range(min(block, iters - len(out))):
                t = clock()
                fn(i % pool)
                out.append(clock() - t)
                i += 1
            pos[m] = i
        b += 1
    elapsed = time.perf_counter() - t_start
    n = min(len(v) for v in lat.values())
    return {"latencies": {m: v[:n] for m, v in lat.items()}, "iterations": n,
            "elapsed_s": elapsed,
            "gc_collections": sum(st["collections"] for st in gc.get_stats()) - gc0}


def stop_process(proc: subprocess.Popen[Any], grace_s: float = 20.0) -> None:
    """SIGTERM (a server's graceful shutdown), then SIGKILL if it is still there after
    ``grace_s``."""
    import signal
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def print_verdicts(verdicts: Sequence[dict[str, Any]]) -> None:
    """One line per target: MET / NOT MET and its text."""
    for v in verdicts:
        print(("MET     " if v["met"] else "NOT MET ") + v["text"])


def end_git_state(git0: dict[str, Any]) -> dict[str, Any]:
    """The code version at the end of a run; warns when src/ changed during it or had
    uncommitted edits (the figures are then of no single commit)."""
    git1 = git_state()
    if git0["src_dirty"] or (git1["src_tree"], git1["src_dirty"]) != (git0["src_tree"], git0["src_dirty"]):
        print(f"WARNING: src/ changed during the run or has uncommitted edits (commit {git0['commit'][:8]} "
              f"-> {git1['commit'][:8]}): rerun for figures of one code version")
    return git1


def write_results(results_dir: Path, name: str, payload: dict[str, Any], stamp: str | None = None) -> Path:
    """``results_dir/{name}-{stamp}.json`` with the creation time and argv first."""
    from datetime import datetime, timezone
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = stamp or datetime.now().strftime("%Y%m%d-%H%M%S")
    out = results_dir / f"{name}-{stamp}.json"
    out.write_text(json.dumps({"created": datetime.now(timezone.utc).isoformat(), "argv": sys.argv[1:],
                               **payload}, indent=2, default=str))
    return out


def add_run_args(p: Any, timeout: float, quiet_timeout: float = 120.0, redis: bool = True) -> None:
    """The options every benchmark script shares: Redis address, seed, data and results
    directories, waiting for a quiet machine, and the child timeout."""
    here = Path(__file__).resolve().parent
    if redis:
        p.add_argument("--redis", default="127.0.0.1:6379", help="Redis host:port, loopback (default 127.0.0.1:6379)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-dir", type=Path, default=here / "data")
    p.add_argument("--results-dir", type=Path, default=here / "results")
    p.add_argument("--wait-quiet", type=float, metavar="CORES",
                   help="before each run wait until other processes use at most CORES cores")
    p.add_argument("--quiet-timeout", type=float, default=quiet_timeout)
    p.add_argument("--timeout", type=float, default=timeout,
                   help=f"seconds before a child is killed (default {timeout:g})")


def choose(listed: str, allowed: Sequence[str], what: str) -> list[str]:
    """A comma-separated option as a list, every item one of ``allowed`` (else exit naming it)."""
    out = [x for x in listed.split(",") if x]
    for x in out:
        if x not in allowed:
            raise SystemExit(f"unknown {what} {x!r}; choose from {tuple(allowed)}")
    return out
