"""``skewless serve`` refuses a port it cannot listen on before anything starts, whatever the
worker count: an ``error:`` line naming host:port and a hint, exit status 1, no "startup
complete" and no traceback (docs/server.md, "A port that cannot be listened on")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import make_repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("port") / "repo")


def serve(repo: Path, host: str, port: int, workers: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SKEWLESS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "skewless.cli", "--repo", str(repo), "serve", "--host", host,
         "--port", str(port), "--workers", str(workers)],
        capture_output=True, text=True, timeout=120, env=env)


def holder(host: str, reuse_port: bool = False) -> socket.socket:
    """A listening socket on a free port of ``host`` (``reuse_port``: as another multi-worker
    ``skewless serve`` holds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, 0))
    s.listen()
    return s


@pytest.fixture
def held() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for s in socks:
        s.close()


def assert_refused(r: subprocess.CompletedProcess[str], where: str, *words: str) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert f"error: cannot listen on {where}" in r.stderr, out
    for w in words:
        assert w in r.stderr, out
    assert "hint:" in r.stderr
    assert "startup complete" not in out.lower() and "Traceback" not in out
    assert "feature server:" not in r.stdout   # refused before the banner: nothing started


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("held_on, serve_on", [
    ("127.0.0.1", "127.0.0.1"),   # the reported case
    ("0.0.0.0", "127.0.0.1"),     # a wildcard holder takes every address
    ("127.0.0.1", "0.0.0.0"),     # a wildcard server needs every address
], ids=["same_address", "held_on_wildcard", "serve_on_wildcard"])
def test_a_taken_port_is_refused_before_starting(repo, held, workers, held_on, serve_on):
    s = holder(held_on)
    held.append(s)
    port = s.getsockname()[1]
    r = serve(repo, serve_on, port, workers)
    assert_refused(r, f"{serve_on}:{port}", "already in use", "--port", f"sport = :{port}")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_port_held_by_another_skewless_serve_is_refused(repo, held, workers):
    """A multi-worker server holds its port with SO_REUSEPORT: sharing it would split traffic."""
    s = holder("127.0.0.1", reuse_port=True)
    held.append(s)
    port = s.getsockname()[1]
    assert_refused(serve(repo, "127.0.0.1", port, workers), f"127.0.0.1:{port}", "already in use")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_taken_ipv6_port_is_refused(repo, held, workers):
    try:
        s = holder("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    held.append(s)
    port = s.getsockname()[1]
    assert_refused(serve(repo, "::1", port, workers), f"[::1]:{port}", "already in use")


@pytest.mark.parametrize("host, words", [
    ("192.0.2.1", ["not an address of this machine"]),           # TEST-NET-1: never local
    ("no-such-host.invalid", ["not a known address"]),
], ids=["foreign_address", "unknown_host"])
def test_a_host_that_is_not_this_machine_is_refused(repo, host, words):
    assert_refused(serve(repo, host, 6566, 1), f"{host}:6566", *words)


def test_a_privileged_port_without_the_right_is_refused():
    """Binding port 80 as an unprivileged user (the check run as 'nobody' in a child)."""
    if sys.platform != "linux":
        pytest.skip("Linux only")
    code = ("import os, sys\n"
            "from skewless.cli.serve import claim_port\n"
            "from skewless.errors import SkewlessError\n"
            "import socket; socket.getaddrinfo('127.0.0.1', 80)  # load the codecs first\n"
            "if os.getuid() == 0:\n    os.setgid(65534); os.setuid(65534)\n"
            "try:\n    claim_port('127.0.0.1', 80, keep=False)\n"
            "except SkewlessError as e:\n    print(e)\n    sys.exit(0)\n"
            "sys.exit(5)\n")
    unprivileged = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    if unprivileged <= 80:
        pytest.skip("port 80 is not privileged on this machine")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cannot listen on 127.0.0.1:80: permission denied" in r.stdout
    assert "1024 or above" in r.stdout


def test_a_free_port_still_serves_with_one_worker(repo):
    """The check keeps the socket for the single worker: it serves on it."""
    from .conftest import start_server
    server = start_server(repo, workers=1)
    try:
        assert server.get("/health").status_code == 200
        # and a second server on the same port is refused, without touching the first
        port = int(server.url.rsplit(":", 1)[1])
        assert_refused(serve(repo, "127.0.0.1", port, 1), f"127.0.0.1:{port}", "already in use")
        assert server.get("/health").status_code == 200
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_stop_when_the_supervisor_is_killed(repo):
    """SIGKILL of the supervisor (OOM killer, kill -9): its workers must not live on, orphaned,
    answering on the port with nobody to restart them, and keeping the port from the next
    `skewless serve` (which refuses a taken port)."""
    import time

    from .conftest import start_server
    server = start_server(repo, workers=2)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(server.proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workers, "no worker process found"
        server.proc.kill()
        server.proc.wait(10)
        deadline = time.monotonic() + 60
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in workers if _alive(p)]
        assert not left, f"workers {left} outlived their supervisor"
        from skewless.server.workers import check_port
        check_port("127.0.0.1", port)   # free again for the next `skewless serve`
    finally:
        for p in [p for p in workers if _alive(p)]:
            try:
                os.kill(p, 9)
            except OSError:
                pass
        server.stop()
