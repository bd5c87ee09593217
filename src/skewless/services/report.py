"""Use case: write the monitoring report (``skewless report``, ``store.report``).

Inputs (docs/report.md, "Where the inputs come from"): given explicitly (dicts or JSON file
paths), only those are used; given nothing, the repo's own files are read:

- ``<repo>/data/monitoring/last.json``: the last monitor result (``skewless monitor`` writes
  it); required, an error names it and the command that creates it;
- ``<repo>/data/monitoring/history.jsonl``: past monitor results, one a line (optional; a
  line that is not a JSON object is skipped and the page says so);
- ``<repo>/data/monitoring/audit/*.json``: the last audit of each service (``skewless audit``
  writes them; optional).

The page is written atomically: a hidden temp file in the target's directory, fsync, rename.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from skewless.errors import InvalidRequestError
from skewless.monitoring import results
from skewless.monitoring.report import DEFAULT_TITLE, render, validate_audit, validate_monitor

MONITORING_DIR = Path(results.MONITORING_DIR)
LAST = MONITORING_DIR / results.LAST
HISTORY = MONITORING_DIR / results.HISTORY
AUDITS = MONITORING_DIR / results.AUDITS

Input = Union[Mapping[str, Any], str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ReportFile:
    """What ``store.report`` wrote: ``path`` (absolute), ``status`` (OK / WARN / ALERT, the
    worst of the monitor's and the audits'), ``counts`` (monitor checks per status),
    ``plots`` (plots on the page), ``size_bytes``, ``inputs`` (the files read, or
    ``<dict>`` for results passed in memory) and ``notes`` (history lines skipped)."""

    path: Path
    status: str
    counts: dict[str, int]
    plots: int
    size_bytes: int
    inputs: list[str]
    notes: list[str]


def _read_json(path: Path, what: str, creator: str, missing_hint: str | None = None) -> Any:
    if not path.is_file():
        raise InvalidRequestError(f"{what} {path} does not exist",
                                  hint=missing_hint or f"check the path; `{creator}` writes it (docs/report.md)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidRequestError(f"{what} {path} cannot be read: {e}",
                                  hint=f"check the file, or run `{creator}` again") from None
    except json.JSONDecodeError as e:
        raise InvalidRequestError(f"{what} {path} is not JSON (line {e.lineno}, column {e.colno}: {e.msg})",
                                  hint=f"run `{creator}` again to rewrite it") from None


def _history(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The history's monitor results, oldest first, and a note per line skipped."""
    runs: list[dict[str, Any]] = []
    notes: list[str] = []
    if not path.is_file():
        return runs, notes
    with path.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                runs.append(validate_monitor(json.loads(line), f"{path} line {n}"))
            except (json.JSONDecodeError, InvalidRequestError) as e:
                why = e.message if isinstance(e, InvalidRequestError) else "not JSON"
                notes.append(f"{path} line {n} skipped ({why})")
    runs.sort(key=lambda r: str(r.get("generated_at", "")))
    return runs, notes


def _monitor_of(item: Input, inputs: list[str], missing_hint: str | None = None) -> dict[str, Any]:
    if isinstance(item, Mapping):
        inputs.append("<monitor dict>")
        return validate_monitor(item)
    path = Path(os.fspath(item))
    inputs.append(str(path))
    return validate_monitor(_read_json(path, "monitor result", "skewless monitor --json PATH", missing_hint),
                            str(path))


def _audit_of(item: Input, i: int, inputs: list[str]) -> dict[str, Any]:
    if isinstance(item, Mapping):
        inputs.append(f"<audit dict #{i + 1}>")
        return validate_audit(item, f"audit result #{i + 1}")
    path = Path(os.fspath(item))
    inputs.append(str(path))
    return validate_audit(_read_json(path, "audit result",
                                     "skewless audit --service NAME --since 1d --json PATH"), str(path))


def write_atomically(path: Path, text: str) -> int:
    """Write ``text`` (UTF-8) to ``path`` through a temp file in its directory, fsync, rename;
    the bytes written. The directory is created when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "xb") as f:   # the umask's permissions, as any file the user writes
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return len(data)


def write_report(repo_path: Path, out: str | os.PathLike[str], monitor: Input | None = None,
                 audits: Sequence[Input] | None = None, title: str = DEFAULT_TITLE) -> ReportFile:
    """Render the report and write it to ``out`` (relative paths are relative to the current
    directory, as the CLI takes them). ``monitor`` / ``audits``: dicts or JSON files; both
    None: the repo's ``data/monitoring`` files (module docstring). Raises InvalidRequestError
    naming the missing or malformed file, and writes nothing then."""
    inputs: list[str] = []
    notes: list[str] = []
    history: list[dict[str, Any]] = []
    if monitor is None and audits is None:
        root = Path(repo_path)
        mon: dict[str, Any] | None = _monitor_of(
            root / LAST, inputs, missing_hint="run `skewless monitor` in this repo first (it writes this file), "
            "or pass --monitor-json FILE / --audit-json FILE (docs/report.md)")
        history, notes = _history(root / HISTORY)
        if history:
            inputs.append(str(root / HISTORY))
        audit_dicts = [_audit_of(p, i, inputs) for i, p in enumerate(sorted((root / AUDITS).glob("*.json")))]
    else:
        mon = _monitor_of(monitor, inputs) if monitor is not None else None
        audit_dicts = [_audit_of(a, i, inputs) for i, a in enumerate(audits or ())]
    target = Path(os.fspath(out)).expanduser()
    if target.is_dir():
        raise InvalidRequestError(f"--out {target} is a directory",
                                  hint="name the HTML file to write, e.g. --out report.html")
    rendered = render(mon, audit_dicts, title=title, history=history, sources=inputs, notes=notes)
    size = write_atomically(target, rendered.html)
    return ReportFile(target.resolve(), rendered.status, rendered.counts, rendered.plots, size,
                      inputs, notes)
