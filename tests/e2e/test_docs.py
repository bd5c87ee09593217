"""The documentation runs as written: every ```python and ```bash block of README.md, of
docs/*.md and of the README that `skewless init` writes is run, in order, against a fresh
example repo from `skewless init` (the README's `cd demo_repo` included).

A block that is not meant to run (a fragment, a synopsis, a block that installs packages) says
so on the line before its fence, with a reason: ``<!-- not run: REASON -->``. Any other block
is run; a command this runner does not know fails the test (add a handler here, or mark the
block), so a new block cannot slip through unrun. ```yaml blocks are checked by the config
loader. Bash lines are run one by one:

- ``skewless ...``: the CLI of this install (``python -m skewless.cli``), exit status 0;
- ``skewless serve ...``: started in the background on a free loopback port (the documented
  port is rewritten in the lines that follow), stopped by its pid after the run;
- ``curl ...``: the real curl (or, without one, httpx with the same request); the answer must
  hold a value for every entity;
- ``make demo``: ``examples/quickstart.py``, as the Makefile runs it; ``make test``: not run
  (it is this suite), see ``SKIPPED_COMMANDS``;
- ``cd DIR``: the directory for the following commands and Python blocks.
"""

from __future__ import annotations

import linecache
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
import yaml

from skewless.config import config_from_dict
from skewless.testing.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_README = ROOT / "src" / "skewless" / "cli" / "templates" / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTED_PORT = "6566"
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
# Commands of otherwise runnable blocks that the runner deliberately skips, with the reason.
SKIPPED_COMMANDS = {
    "make test": "it runs this very suite (and mypy); the suite cannot run itself",
}


@dataclass
class Block:
    path: Path
    line: int           # 1-based line of the opening fence
    lang: str
    text: str
    not_run: str | None  # the reason, when marked ``<!-- not run: ... -->``

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} ({self.lang})"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    out: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        assert i < len(lines), f"{path.relative_to(ROOT)}:{start + 1}: unclosed code fence"
        before = lines[start - 1] if start > 0 else ""
        marker = NOT_RUN.match(before)
        out.append(Block(path, start + 1, m["lang"].lower(), "\n".join(body) + "\n",
                         marker["reason"] if marker else None))
        i += 1
    return out


def runnable(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.lang in ("python", "bash", "sh", "shell", "console")]


def commands(block: Block) -> list[str]:
    """The shell commands of a bash block: continuation lines and quotes spanning lines joined,
    comment lines dropped."""
    out: list[str] = []
    pending = ""
    for line in block.text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quote still open: the command goes on on the next line
            continue
        out.append(pending)
        pending = ""
    assert not pending, f"{block}: unterminated command {pending!r}"
    return out


# --- running -----------------------------------------------------------------------------------
def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("SKEWLESS_") and k != "PROMETHEUS_MULTIPROC_DIR"}


@dataclass
class Session:
    """A reader working through the docs: a current directory, a Python namespace shared by the
    Python blocks, and the servers started along the way."""

    cwd: Path
    namespace: dict[str, Any] = field(default_factory=dict)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    port: int | None = None
    ran: list[str] = field(default_factory=list)          # what was run, for the report
    answers: list[dict[str, Any]] = field(default_factory=list)   # JSON bodies curl got

    def run(self, block: Block) -> None:
        if block.lang == "python":
            self.python(block)
        else:
            for command in commands(block):
                self.bash(block, command)

    def python(self, block: Block) -> None:
        here = os.getcwd()
        os.chdir(self.cwd)
        try:
            # the block's text is its source, as a notebook registers a cell's: functions
            # defined in it have source text (an on-demand view stores it, docs/on-demand.md)
            linecache.cache[str(block)] = (len(block.text), None, block.text.splitlines(True), str(block))
            exec(compile(block.text, str(block), "exec"), self.namespace)  # noqa: S102
        finally:
            os.chdir(here)
        self.ran.append(f"{block}: python")

    def bash(self, block: Block, command: str) -> None:
        argv = shlex.split(command, comments=True)
        key = " ".join(argv)
        if key in SKIPPED_COMMANDS:
            self.ran.append(f"{block}: skipped `{key}`: {SKIPPED_COMMANDS[key]}")
            return
        self.ran.append(f"{block}: {key[:60]}")
        if argv[0] == "cd" and len(argv) == 2:
            self.cwd = (self.cwd / argv[1]).resolve()
            assert self.cwd.is_dir(), f"{block}: `cd {argv[1]}`: no such directory"
        elif argv[:2] == ["skewless", "serve"]:
            self.serve(block, argv[2:])
        elif argv[0] == "skewless":
            self.skewless(block, argv[1:])
        elif argv[0] == "curl":
            self.curl(block, argv)
        elif argv == ["make", "demo"]:
            self.make_demo(block)
        else:
            pytest.fail(f"{block}: this test does not know how to run `{key}`: add a handler in "
                        f"{Path(__file__).relative_to(ROOT)}, or mark the block "
                        "<!-- not run: REASON --> on the line before its fence")

    def skewless(self, block: Block, args: list[str]) -> None:
        done = subprocess.run([sys.executable, "-m", "skewless.cli", *args], cwd=self.cwd,
                              env={**clean_env(), "COLUMNS": "120"}, capture_output=True, text=True,
                              timeout=600)
        out = done.stdout + done.stderr
        assert done.returncode == 0, f"{block}: `skewless {' '.join(args)}` exited {done.returncode}:\n{out}"
        assert "Traceback" not in out, f"{block}: `skewless {' '.join(args)}`:\n{out}"

    def serve(self, block: Block, args: list[str]) -> None:
        """``skewless serve`` as documented, in the background, on a free port instead of the
        documented one (which may be taken on a shared machine)."""
        args = list(args)
        if "--port" in args:
            args[args.index("--port") + 1] = str(self.free())
        else:
            args += ["--port", str(self.free())]
        log = self.cwd / f"serve-{self.port}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "skewless.cli", "serve", *args],
                                    cwd=self.cwd, env=clean_env(), stdout=out, stderr=subprocess.STDOUT)
        self.servers.append(proc)
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"{block}: skewless serve exited:\n{log.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{block}: skewless serve never answered:\n{log.read_text()}"
            time.sleep(0.2)

    def free(self) -> int:
        self.port = free_port()
        return self.port

    def curl(self, block: Block, argv: list[str]) -> None:
        if self.port is None:  # docs/server.md: the server the reader started before
            self.serve(block, [])
        argv = [a.replace(f"127.0.0.1:{DOCUMENTED_PORT}", f"127.0.0.1:{self.port}")
                 .replace(f"localhost:{DOCUMENTED_PORT}", f"127.0.0.1:{self.port}") for a in argv]
        if shutil.which("curl"):
            done = subprocess.run([*argv, "--fail-with-body", "--max-time", "60"], capture_output=True,
                                  timeout=120)
            assert done.returncode == 0, f"{block}: {shlex.join(argv)}: {done.stdout!r} {done.stderr!r}"
            body = done.stdout
        else:  # the same request, as curl would send it
            url = next(a for a in argv if a.startswith("http"))
            data = argv[argv.index("-d") + 1] if "-d" in argv else None
            method = argv[argv.index("-X") + 1] if "-X" in argv else ("POST" if data else "GET")
            r = httpx.request(method, url, content=data, timeout=60)
            assert r.is_success, f"{block}: {r.status_code} {r.text}"
            body = r.content
        answer = orjson.loads(body)
        self.answers.append(answer)
        if "results" in answer:  # /get-online-features: a value for every entity, none missing
            names = answer["metadata"]["feature_names"]
            for name, result in zip(names, answer["results"]):
                assert None not in result["values"], f"{block}: {name} is missing: {answer}"
                assert set(result["statuses"]) == {"PRESENT"}, f"{block}: {name}: {answer}"

    def make_demo(self, block: Block) -> None:
        """What `make demo` runs once the venv exists: the quickstart, from a scratch directory
        (it writes ./demo_repo there)."""
        scratch = self.cwd / "make-demo"
        scratch.mkdir()
        done = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], cwd=scratch,
                              env=clean_env(), capture_output=True, text=True, timeout=900)
        out = done.stdout + done.stderr
        assert done.returncode == 0, f"{block}: make demo failed:\n{out}"
        assert "Online values equal the offline join at the same moment: yes" in out, out
        statuses = re.search(r"statuses of amount_sum_7d: (\[.*?\])", out)
        assert statuses and "PRESENT" in statuses.group(1), out

    def stop(self) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session(tmp_path)
    yield s
    s.stop()


def init_repo(session: Session, name: str = "demo_repo") -> None:
    """What the docs outside the README assume: the README's demo_repo, applied and
    materialized, as the current directory."""
    session.skewless(Block(ROOT / "README.md", 0, "bash", "", None), ["init", name])
    session.cwd = session.cwd / name
    session.skewless(Block(ROOT / "README.md", 0, "bash", "", None), ["apply"])
    session.skewless(Block(ROOT / "README.md", 0, "bash", "", None), ["materialize-incremental"])


# --- the tests ---------------------------------------------------------------------------------
def test_the_readme_runs_as_written(session: Session) -> None:
    """README.md top to bottom, against the repo its quickstart creates: `make demo`, the CLI
    quickstart, the Python snippets, the configuration, `skewless serve` and the curl."""
    path = ROOT / "README.md"
    for block in blocks(path):
        if block.not_run is None and block.lang in ("python", "bash"):
            session.run(block)
    ns = session.namespace
    training = ns["training"]
    assert isinstance(training, pd.DataFrame) and len(training) == len(ns["labels"])
    assert training["amount_sum_7d"].notna().mean() > 0.9       # values, not nulls
    resp = ns["resp"]
    assert resp.statuses["amount_sum_7d"] == ["PRESENT", "PRESENT"], resp.statuses
    assert None not in resp.to_dict()["amount_sum_7d"]
    assert session.answers, "the README's curl was not run"
    served = session.answers[-1]["results"][1]["values"]
    assert served == resp.to_dict()["amount_sum_7d"]          # HTTP answers as the SDK


def test_the_readme_python_runs_on_a_fresh_init_repo(session: Session) -> None:
    """The Python snippets alone, on a repo nothing was applied to: a reader who skips the CLI."""
    session.skewless(Block(ROOT / "README.md", 0, "bash", "", None), ["init", "fresh"])
    session.cwd = session.cwd / "fresh"
    python = [b for b in blocks(ROOT / "README.md") if b.lang == "python" and b.not_run is None]
    assert len(python) >= 2
    for block in python:
        session.run(block)
    assert session.namespace["resp"].statuses["amount_sum_7d"] == ["PRESENT", "PRESENT"]


def test_the_readme_apply_changes_no_schema(session: Session) -> None:
    """The README's definitions are the init repo's, less descriptions: applying them after the
    quickstart's `skewless apply` changes no field, source or TTL, so `plan` afterwards shows
    only descriptions (and owners, tags) coming back."""
    init_repo(session)
    python = [b for b in blocks(ROOT / "README.md") if b.lang == "python" and b.not_run is None]
    session.run(python[0])
    from skewless import FeatureStore
    from skewless.services.repo import load_repo
    plan = FeatureStore(session.cwd).plan(load_repo(session.cwd).objects)
    for change in plan.changes:
        assert change.op == "update" and not change.breaking, change
        assert all(re.search(r"description|owner|tags", d) for d in change.details), change.details


@pytest.mark.parametrize("path", DOCS + [TEMPLATE_README], ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_blocks_run_as_written(path: Path, session: Session) -> None:
    """Each page's runnable blocks, in order, from the README's demo_repo (applied and
    materialized; the init repo's own README: from the repo as `init` leaves it)."""
    todo = [b for b in runnable(path) if b.not_run is None]
    if not todo:
        return
    if path == TEMPLATE_README:
        session.skewless(Block(path, 0, "bash", "", None), ["init", "fresh"])
        session.cwd = session.cwd / "fresh"
    else:
        init_repo(session)
    for block in todo:
        session.run(block)
    assert session.ran


def test_every_code_block_is_run_or_says_why_not() -> None:
    """A block in a language the runner does not know is neither run nor checked: it must be
    one of the known kinds, and a not-run marker must give a reason."""
    known = {"python", "bash", "yaml", "json", "text", ""}
    for path in [ROOT / "README.md", *DOCS, TEMPLATE_README]:
        for block in blocks(path):
            assert block.lang in known, f"{block}: unknown block language {block.lang!r}"
            if block.not_run is not None:
                assert len(block.not_run) >= 10, f"{block}: a not-run marker needs a reason"
                assert block.lang in ("python", "bash"), f"{block}: only code blocks are run"


def test_not_run_markers_stay_few() -> None:
    """The README and the init repo's README have none: everything there runs."""
    for path in (ROOT / "README.md", TEMPLATE_README):
        assert all(b.not_run is None for b in blocks(path)), path


@pytest.mark.parametrize("path", [ROOT / "README.md", *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_blocks_are_valid_configs(path: Path, tmp_path: Path) -> None:
    """Every ```yaml block is a `feature_store.yaml` (or a part of one, given a project) that
    the config loader accepts: no documented key is unknown, no documented value refused."""
    for block in blocks(path):
        if block.lang != "yaml":
            continue
        data = yaml.safe_load(block.text)
        assert isinstance(data, dict), f"{block}: not a mapping"
        config_from_dict({"project": "docs", **data}, tmp_path, environ={}, origin=str(block))


# --- the parser itself -------------------------------------------------------------------------
def test_commands_join_continuations_and_multi_line_quotes() -> None:
    block = Block(ROOT / "README.md", 1, "bash", (
        "# a comment\n"
        "skewless init demo_repo          # trailing comment\n"
        "curl -s -X POST http://127.0.0.1:6566/x \\\n  -d '{\"a\": 1}'\n"
        "curl -s http://127.0.0.1:6566/y -d '{\n  \"b\": 2\n}'\n"
        "# or: {\"c\": 3}\n"), None)
    got = [shlex.split(c, comments=True) for c in commands(block)]
    assert got == [["skewless", "init", "demo_repo"],
                   ["curl", "-s", "-X", "POST", "http://127.0.0.1:6566/x", "-d", '{"a": 1}'],
                   ["curl", "-s", "http://127.0.0.1:6566/y", "-d", '{\n  "b": 2\n}']]


def test_an_unknown_command_fails_the_run(session: Session) -> None:
    block = Block(ROOT / "README.md", 1, "bash", "rm -rf data\n", None)
    with pytest.raises(pytest.fail.Exception, match="does not know how to run `rm -rf data`"):
        session.run(block)


def test_not_run_markers_are_read(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("x\n<!-- not run: a fragment of a definition -->\n```python\n...\n```\n\n"
                    "```bash\nskewless ls\n```\n")
    got = blocks(page)
    assert [(b.lang, b.not_run) for b in got] == [("python", "a fragment of a definition"), ("bash", None)]
