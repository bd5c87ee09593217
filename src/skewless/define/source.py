"""Data sources: where a view's history lives (the offline source of truth)."""

from __future__ import annotations

import fnmatch
import math
import os
import posixpath
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from skewless.define._common import FrozenMixin, check_duration, check_name, check_str, seconds_duration
from skewless.define._fields import BREAKING, PART, Spec, as_dict, spec_of
from skewless.errors import DefinitionError


def _delay(label: str, delay: Any) -> timedelta | None:
    """``availability_delay`` as a timedelta (None: no delay); DefinitionError naming the
    source for anything but a non-negative, finite timedelta or number of seconds."""
    if delay is None:
        return None
    given = delay
    if isinstance(delay, (int, float)) and not isinstance(delay, bool):
        if not math.isfinite(delay):
            raise DefinitionError(f"{label}: availability_delay {delay!r} is not a finite number "
                                  "of seconds", hint="e.g. availability_delay=timedelta(hours=6)")
        delay = seconds_duration(f"{label}: availability_delay", delay)
    if not isinstance(delay, timedelta):
        raise DefinitionError(
            f"{label}: availability_delay must be a timedelta (or seconds), got {delay!r}",
            hint="e.g. availability_delay=timedelta(hours=6): rows land 6 hours after their "
            "event time")
    if delay < timedelta(0):
        shown = given if delay is not given else f"-{-delay}"
        raise DefinitionError(
            f"{label}: availability_delay {shown} is negative; a row cannot land before its "
            "event time", hint="give how long after its event time a row lands (>= 0)")
    check_duration(f"{label}: availability_delay", delay)
    return delay if delay > timedelta(0) else None


def _delay_seconds(delay: timedelta | None) -> float | None:
    return delay.total_seconds() if delay else None


def _delay_from_seconds(seconds: float | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds else None


class FileSource(FrozenMixin):
    """Parquet history: a file, a directory (hive partitions allowed) or a glob. A path is a
    glob when it holds ``*`` or ``?`` (``**``: any depth); ``[`` and ``]`` are literal
    characters of file names, never character classes (``is_glob``, docs/types.md).

    ``timestamp_field`` is the event time of each row; ``created_timestamp_column`` (optional)
    is when the row was written, and breaks ties between rows with the same event time (the
    latest write wins). ``event_id_column`` (optional) names a column identifying each event:
    rows with the same event id are one event for windowed aggregations (a stream redelivers
    at least once; docs/aggregations.md, "Event ids"). ``field_mapping`` renames source columns to feature / join-key names.
    Relative paths are resolved against the feature repo.

    Feast's spellings are accepted where they mean the same thing (docs/configuration.md,
    "Coming from Feast"): ``file_format="parquet"`` or ``ParquetFormat()`` (Parquet is the only
    format), ``event_timestamp_column`` for ``timestamp_field``, ``created_timestamp_column=""``
    for none. Any other format, and Feast's source ``tags`` / ``owner`` /
    ``s3_endpoint_override``, are refused with what to write instead.
    """

    path: str
    timestamp_field: str
    created_timestamp_column: str | None
    field_mapping: dict[str, str]
    name: str
    description: str
    availability_delay: timedelta | None   # None: rows are usable at their event time
    event_id_column: str | None

    KIND = "FileSource"
    TYPE_TAG = "file"
    # ``resets_online``: the fields that say which rows the source holds; another value means
    # the stored online records may not fit (``registry.diff.online_reset``). ``describe``: rows
    # of the view's ``skewless describe`` (the name and description are shown in the "source"
    # row; the push source's row is 1).
    FIELDS = (
        Spec("name"),
        Spec("path", resets_online=True, describe=(0, "source")),
        Spec("timestamp_field", resets_online=True, describe=(2, "timestamp field")),
        Spec("created_timestamp_column", resets_online=True, describe=(3, "created timestamp")),
        Spec("field_mapping", dump=as_dict, resets_online=True, describe=(4, "field mapping")),
        Spec("description"),
        # Which rows count at a time, so served and training values: a change is breaking, and
        # the online table starts over (its records were chosen under the old delay).
        Spec("availability_delay", key="availability_delay_seconds", dump=_delay_seconds,
             load=_delay_from_seconds, diff=BREAKING, label="availability_delay",
             shown=_delay_from_seconds, resets_online=True, describe=(5, "availability delay"),
             omit=None),
        Spec("event_id_column", resets_online=True, describe=(6, "event id"), omit=None),
    )

    def __init__(
        self,
        path: str,
        timestamp_field: str = "",
        created_timestamp_column: str | None = None,
        field_mapping: Mapping[str, str] | None = None,
        name: str | None = None,
        description: str = "",
        availability_delay: timedelta | int | float | None = None,
        event_id_column: str | None = None,
        *,
        file_format: str | object | None = None,
        event_timestamp_column: str | None = None,
        tags: Mapping[str, str] | None = None,
        owner: str | None = None,
        s3_endpoint_override: str | None = None,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise DefinitionError(f"FileSource: path must be a non-empty string, got {path!r}")
        path = os.fspath(path)
        if event_timestamp_column:  # Feast's older name of timestamp_field
            if timestamp_field and timestamp_field != event_timestamp_column:
                raise DefinitionError(
                    f"FileSource {path!r}: timestamp_field={timestamp_field!r} and "
                    f"event_timestamp_column={event_timestamp_column!r} disagree",
                    hint="event_timestamp_column is Feast's older name of timestamp_field; pass only "
                    "timestamp_field")
            timestamp_field = event_timestamp_column
        if created_timestamp_column == "":  # Feast's default: no created timestamp
            created_timestamp_column = None
        _check_feast_only(path, file_format, tags, owner, s3_endpoint_override)
        if name is None:
            stem = os.path.basename(path.rstrip("/")).split(".")[0] or "source"
            name = "".join(c if c.isalnum() or c == "_" else "_" for c in stem).strip("_") or "source"
            if name[0].isdigit():
                name = "src_" + name
            name = name.replace("__", "_")
        label = f"FileSource '{name}'"
        check_name("FileSource", name)
        if not isinstance(timestamp_field, str) or not timestamp_field:
            raise DefinitionError(f"{label}: timestamp_field must name the event-time column")
        if created_timestamp_column is not None and (
            not isinstance(created_timestamp_column, str) or not created_timestamp_column
        ):
            raise DefinitionError(f"{label}: created_timestamp_column must be a column name or None")
        if created_timestamp_column == timestamp_field:
            raise DefinitionError(
                f"{label}: created_timestamp_column and timestamp_field are both {timestamp_field!r}",
                hint="the created timestamp is when a row was written; omit it if you have none",
            )
        if event_id_column is not None:
            if not isinstance(event_id_column, str) or not event_id_column:
                raise DefinitionError(f"{label}: event_id_column must be a column name or None")
            if event_id_column in (timestamp_field, created_timestamp_column):
                raise DefinitionError(
                    f"{label}: event_id_column {event_id_column!r} is a timestamp column",
                    hint="name the column that identifies each event (e.g. 'event_id'), or omit it")
        mapping = dict(field_mapping or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
            raise DefinitionError(f"{label}: field_mapping must map str source columns to str names")
        targets = list(mapping.values())
        if len(set(targets)) != len(targets):
            raise DefinitionError(f"{label}: field_mapping maps two columns to the same name: {mapping}")
        self._set("path", path)
        self._set("timestamp_field", timestamp_field)
        self._set("created_timestamp_column", created_timestamp_column)
        self._set("field_mapping", mapping)
        self._set("name", name)
        self._set("description", description or "")
        self._set("availability_delay", _delay(label, availability_delay))
        self._set("event_id_column", event_id_column)

    def source_column(self, name: str) -> str:
        """The source column that feeds feature / key ``name`` (inverse of field_mapping)."""
        for src, dst in self.field_mapping.items():
            if dst == name:
                return src
        return name

    def __repr__(self) -> str:
        delay = f", availability_delay={self.availability_delay!r}" if self.availability_delay else ""
        return f"FileSource(name={self.name!r}, path={self.path!r}{delay})"


def _check_feast_only(path: str, file_format: object, tags: object, owner: object,
                      s3_endpoint_override: object) -> None:
    """Feast's FileSource arguments: Parquet is accepted (the only format); the rest is refused
    saying what to write instead."""
    label = f"FileSource {path!r}"
    if file_format is not None:
        fmt = file_format if isinstance(file_format, str) else type(file_format).__name__
        if fmt.strip().lower() not in ("parquet", "parquetformat"):
            raise DefinitionError(
                f"{label}: file_format {file_format if isinstance(file_format, str) else fmt + '()'!r} "
                "is not supported; skewless reads Parquet only",
                hint="convert the data to Parquet (e.g. pandas.read_csv(...).to_parquet(...)), then "
                "write file_format=\"parquet\" or omit file_format")
    if tags or owner:
        raise DefinitionError(
            f"{label}: sources take no {'tags' if tags else 'owner'}",
            hint="put tags= and owner= on the FeatureView that reads this source")
    if s3_endpoint_override:
        raise DefinitionError(
            f"{label}: s3_endpoint_override is not supported",
            hint="remove it; s3:// paths are read where the engine can read them with its default "
            "endpoint")


_WILDCARDS = frozenset("*?")


def is_glob(path: str) -> bool:
    """Whether a source path asks for a glob: it holds ``*`` (``**`` for any depth) or ``?``.
    ``[`` and ``]`` are always literal characters (no character classes), so
    ``data/x[1].parquet`` names that one file and never matches ``data/x1.parquet``
    (docs/types.md, "Paths: literal unless * or ?"). The one rule every reader follows."""
    return not _WILDCARDS.isdisjoint(path)


def glob_pattern(path: str) -> str:
    """A glob path as a pattern for a glob matcher (Python's ``glob`` and ``fnmatch``,
    DuckDB's ``read_parquet``): ``[`` escaped as ``[[]``, so it matches only itself; ``*``,
    ``**`` and ``?`` stay wildcards."""
    return path.replace("[", "[[]")


def literal_pattern(path: str) -> str:
    """A concrete path as a pattern for a glob matcher: every wildcard escaped (``[*]``,
    ``[?]``, ``[[]``), so the matcher finds that one file whatever its name holds. A path
    without wildcard characters is returned as it is."""
    if _WILDCARDS.isdisjoint(path) and "[" not in path:
        return path
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)
# What a pushed file's name looks like (see PushSource): a glob batch source must match it.
PUSH_FILE_EXAMPLE = "push-0123456789abcdef0123456789abcdef.parquet"   # push-<batch id>.parquet


class PushSource(FrozenMixin):
    """Rows pushed by the caller (``FeatureStore.push(name, df)``), kept in ``batch_source``.

    Offline first: every push lands in ``batch_source`` (one new Parquet file per push) before
    the online store, so the online store can always be rebuilt from the offline history.
    Wherever the offline history is read (retrieval, materialization, ``rebuild-online``), a
    view with a PushSource reads its ``batch_source``.

    ``batch_source`` must be a local directory (or a glob such as ``data/events/*.parquet``
    whose directory part has no wildcard) so that pushes can add files; a single file, a URL
    or a glob the pushed file names would not match is rejected here.
    """

    name: str
    batch_source: FileSource
    description: str

    KIND = "PushSource"
    TYPE_TAG = "push"
    FIELDS = (
        Spec("name", describe=(1, "push source")),
        Spec("batch_source", dump=spec_of, load=FileSource.from_spec, diff=PART),
        Spec("description"),
    )

    def __init__(self, name: str, batch_source: FileSource, description: str = "") -> None:
        check_name("PushSource", name)
        label = f"PushSource '{name}'"
        if not isinstance(batch_source, FileSource):
            raise DefinitionError(
                f"{label}: batch_source must be a FileSource, got {type(batch_source).__name__}",
                hint="PushSource(name, batch_source=FileSource('data/events', timestamp_field='ts'))")
        push_directory(batch_source, label)  # raises DefinitionError if pushes cannot land there
        self._set("name", name)
        self._set("batch_source", batch_source)
        self._set("description", check_str("PushSource", name, "description", description))

    @property
    def push_dir(self) -> str:
        """The directory pushed files are written to (relative paths: to the feature repo)."""
        return push_directory(self.batch_source, f"PushSource '{self.name}'")

    def __repr__(self) -> str:
        return f"PushSource(name={self.name!r}, batch_source={self.batch_source!r})"


Source = FileSource | PushSource


def offline_source(source: Source) -> FileSource:
    """Where a source's history is read offline: the FileSource itself, or the batch source of
    a PushSource. The one place that tells the two apart for readers of the offline history."""
    return source.batch_source if isinstance(source, PushSource) else source


def push_directory(batch: FileSource, label: str) -> str:
    """The directory a push writes into, given the batch source's path (no I/O).

    A directory path is itself; a glob ``dir/*.parquet`` or ``dir/**/*.parquet`` writes into
    ``dir`` (the wildcard-free part) if its last part matches the pushed file names. Anything
    else (a single file, a URL, wildcards in the directory part) is a DefinitionError saying
    how to fix it.
    """
    path = batch.path.replace(os.sep, "/")
    fix = (f"point the batch source at a directory of Parquet files, e.g. "
           f"FileSource('{_suggest_dir(path)}', timestamp_field='{batch.timestamp_field}'), "
           "and keep the existing files in it")
    if "://" in path:
        raise DefinitionError(
            f"{label}: batch source path {batch.path!r} is a URL; pushes write local files "
            "atomically (temp file + rename), which object stores cannot do", hint=fix)
    if not is_glob(path):
        if path.lower().endswith(".parquet"):
            raise DefinitionError(
                f"{label}: batch source path {batch.path!r} is a single file; each push adds a "
                "new Parquet file, so the batch source must be a directory (or a glob in one)",
                hint=fix)
        return path.rstrip("/") or "/"
    parts = path.split("/")
    first = next(i for i, part in enumerate(parts) if is_glob(part))
    rest = parts[first:]
    directory = "/".join(parts[:first]) or ("/" if path.startswith("/") else ".")
    if any(p != "**" for p in rest[:-1]) or rest[-1] == "**" or \
            not fnmatch.fnmatchcase(PUSH_FILE_EXAMPLE, glob_pattern(rest[-1])):
        raise DefinitionError(
            f"{label}: batch source glob {batch.path!r} does not tell where pushed files go, or "
            f"would not match them (they are named like {PUSH_FILE_EXAMPLE!r})",
            hint="use a directory, or a glob whose wildcards are all in its last part, e.g. "
            f"'{posixpath.join(directory, '*.parquet')}'")
    return directory


def _suggest_dir(path: str) -> str:
    stem = path.rstrip("/")
    if stem.lower().endswith(".parquet"):
        stem = stem[: -len(".parquet")]
    return stem or "data/events"


def source_from_spec(spec: dict[str, Any]) -> Source:
    kind = spec.get("type")
    if kind == "file":
        return FileSource.from_spec(spec)
    if kind == "push":
        return PushSource.from_spec(spec)
    raise DefinitionError(f"unknown source type {kind!r} in the registry")
