"""LoggingConfig: how a FeatureService's online reads are logged (docs/feature-logging.md).

Feast's spelling is accepted: ``LoggingConfig(destination=FileLoggingDestination(path=...),
sample_rate=...)`` is ``LoggingConfig(sample_rate=..., path=...)``.
"""

from __future__ import annotations

from typing import Any

from skewless.define._common import FrozenMixin
from skewless.define._fields import Spec
from skewless.errors import DefinitionError


class FileLoggingDestination:
    """Feast's file destination of a feature service's logs: ``path`` is the log root (relative
    to the repo; None: ``logging.path`` of feature_store.yaml). Feast's other arguments
    (``s3_endpoint_override``, ``partition_by``) are refused: logs are partitioned by service and
    date (docs/feature-logging.md)."""

    def __init__(self, path: str | None = None, s3_endpoint_override: str = "",
                 partition_by: Any = None) -> None:
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise DefinitionError(f"FileLoggingDestination: path must be a non-empty string, got {path!r}")
        if s3_endpoint_override or partition_by:
            raise DefinitionError(
                "FileLoggingDestination: s3_endpoint_override and partition_by are not supported",
                hint="logs are written under logging.path, partitioned by feature_service and "
                "log_date (docs/feature-logging.md)")
        self.path = path

    def __repr__(self) -> str:
        return f"FileLoggingDestination(path={self.path!r})"


class LoggingConfig(FrozenMixin):
    """Feature logging of one FeatureService: ``sample_rate`` (0 to 1: the share of its online
    requests logged) and ``path`` (the log root, relative to the repo; None: the global
    ``logging.path``). ``destination``: Feast's ``FileLoggingDestination``, another spelling of
    ``path``. Raises DefinitionError for a rate outside [0, 1] or a bad path."""

    sample_rate: float
    path: str | None

    KIND = "logging config"
    FIELDS = (
        Spec("sample_rate"),
        Spec("path", omit=None),
    )

    def __init__(self, sample_rate: float = 1.0, path: str | None = None,
                 destination: FileLoggingDestination | None = None) -> None:
        if destination is not None:
            if not isinstance(destination, FileLoggingDestination):
                raise DefinitionError(
                    f"LoggingConfig: destination must be a FileLoggingDestination, got {destination!r}",
                    hint="logs are Parquet files: LoggingConfig(sample_rate=..., path=...)")
            if path is not None and destination.path is not None and path != destination.path:
                raise DefinitionError("LoggingConfig: pass path or destination, not both")
            path = path if path is not None else destination.path
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) \
                or not 0.0 <= float(sample_rate) <= 1.0:
            raise DefinitionError(f"LoggingConfig: sample_rate must be a number from 0 to 1, got {sample_rate!r}",
                                  hint="1.0 logs every request, 0.1 one in ten")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise DefinitionError(f"LoggingConfig: path must be a non-empty string, got {path!r}")
        self._set("sample_rate", float(sample_rate))
        self._set("path", path)

    def __repr__(self) -> str:
        return f"LoggingConfig(sample_rate={self.sample_rate!r}, path={self.path!r})"
