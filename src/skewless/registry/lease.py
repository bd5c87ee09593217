"""Leases: exclusive operations with an expiry, kept in the registry (docs/online.md, "Leases").

A lease names what it guards (``rebuild-online:<online key>``), its holder (host, pid,
command, operation, since when) and when it expires. The registry grants it atomically to one
holder at a time; a holder renews it while it runs (``held`` does so from a small thread), so
a killed holder blocks the next run only until its lease expires. A second run is refused with
a ``LeaseHeldError`` that names the holder and the expiry.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from skewless.errors import LeaseHeldError, LeaseLostError, SkewlessError

if TYPE_CHECKING:
    from skewless.registry.base import RegistryStore

LEASE_SECONDS = 60.0   # a killed holder blocks the next run at most this long
MARGIN = 1 / 3         # a holder renews every third of the lease, and stops trusting it with a third left


def new_token() -> str:
    """A holder's identity: 16 hex digits (it also names the run's staging tables)."""
    return uuid.uuid4().hex[:16]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Lease:
    """One holder's claim on ``name`` in ``project`` until ``expires`` (Unix seconds, the clock
    of the process that wrote it: hosts sharing a registry need synchronised clocks)."""

    project: str
    name: str          # what it guards, e.g. "rebuild-online:user_spend"
    token: str         # the holder's identity (new_token)
    operation: str     # what the holder does, for people: "rebuild-online of feature view 'x'"
    host: str
    pid: int
    command: str       # the holder's command line
    since: float       # Unix seconds
    expires: float     # Unix seconds

    @classmethod
    def new(cls, project: str, name: str, operation: str, seconds: float = LEASE_SECONDS) -> Lease:
        now = time.time()
        return cls(project, name, new_token(), operation, socket.gethostname(), os.getpid(),
                   " ".join(sys.argv) or sys.executable, now, now + seconds)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Lease:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)

    def describe(self) -> str:
        """Who holds it, since when, until when, for people."""
        return (f"pid {self.pid} on host '{self.host}' (command: {self.command!r}), running since "
                f"{_iso(self.since)}; its lease expires at {_iso(self.expires)} unless renewed")


def held_error(current: Lease) -> LeaseHeldError:
    """The refusal of a second run while ``current`` holds the lease (every store raises this)."""
    return LeaseHeldError(
        f"{current.operation} is already running in project '{current.project}': held by "
        f"{current.describe()}; nothing was changed",
        hint="wait for that run to finish and try again; if its process is gone (killed, host "
        f"down), its lease lapses at {_iso(current.expires)} and the next run takes over and "
        "cleans up after it (docs/online.md, \"Leases\")", holder=current)


class Holding:
    """A lease being held: renewed by a daemon thread every third of its duration.

    ``check()`` raises LeaseLostError when the lease can no longer be trusted: another holder
    took it over, or renewal has failed for so long that less than a third of it is left
    (the registry was unreachable), so a run checks it before any step that must be exclusive."""

    def __init__(self, registry: RegistryStore, lease: Lease, seconds: float,
                 previous: Lease | None) -> None:
        self.registry = registry
        self.lease = lease
        self.seconds = seconds
        self.previous = previous   # the expired holder this run took over from, if any
        self._lost: SkewlessError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                        name=f"lease {lease.name}")
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds * MARGIN):
            try:
                self.lease = self.registry.renew_lease(self.lease, time.time() + self.seconds)
            except LeaseLostError as e:
                self._lost = e
                return
            except SkewlessError:
                continue   # the registry hiccuped: try again; check() stops trusting it in time

    def check(self) -> None:
        if self._lost is not None:
            raise self._lost
        if time.time() > self.lease.expires - self.seconds * MARGIN:
            raise LeaseLostError(
                f"{self.lease.operation}: the lease could not be renewed in time (the registry "
                f"did not answer), so another run may have taken over; nothing was swapped in",
                hint="check the registry is reachable, then run the command again")

    def confirm(self) -> None:
        """Renew the lease now, raising LeaseLostError if another holder took it over: the
        last step before a change that must be exclusive (a swap)."""
        self.check()
        try:
            self.lease = self.registry.renew_lease(self.lease, time.time() + self.seconds)
        except LeaseLostError as e:
            self._lost = e
            raise

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def held(registry: RegistryStore, project: str, name: str, operation: str,
         seconds: float = LEASE_SECONDS) -> Iterator[Holding]:
    """Hold the lease ``name`` of ``project`` for the block, renewed while it runs and released
    at its end (an error inside included). Raises LeaseHeldError, naming the holder, if another
    unexpired holder has it."""
    lease = Lease.new(project, name, operation, seconds)
    previous = registry.acquire_lease(lease)
    holding = Holding(registry, lease, seconds, previous)
    try:
        yield holding
    finally:
        holding.stop()
        try:
            registry.release_lease(holding.lease)
        except SkewlessError:
            pass   # the lease lapses on its own at its expiry


def renewed(lease: Lease, expires: float) -> Lease:
    return replace(lease, expires=expires)


__all__ = ["LEASE_SECONDS", "Holding", "Lease", "held", "held_error", "new_token"]
