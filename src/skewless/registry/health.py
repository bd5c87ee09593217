"""How the serving definitions stand: when the registry was last read well, and the last
read's failure (``FeatureStore.registry_health``, ``/ready``, ``/metrics``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from skewless.errors import RegistryError


@dataclass(frozen=True)
class RegistryHealth:
    """The serving definitions' source: see ``FeatureStore.registry_health``."""

    read_at: float | None          # Unix time of the last good registry read
    error: RegistryError | None    # the last read's failure, if it failed
    version: int | None            # registry version served

    @property
    def stale(self) -> bool:
        """Serving uses the last good snapshot: the registry cannot be read now."""
        return self.error is not None and self.read_at is not None

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the snapshot served was read (None before the first read)."""
        return None if self.read_at is None else max((now or time.time()) - self.read_at, 0.0)
