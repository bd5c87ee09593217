"""Data sources: where a view's history lives (the offline source of truth)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from skewless.define._common import FrozenMixin, check_name
from skewless.errors import DefinitionError


class FileSource(FrozenMixin):
    """Parquet history: a file, a directory (hive partitions allowed) or a glob.

    ``timestamp_field`` is the event time of each row; ``created_timestamp_column`` (optional)
    is when the row was written, and breaks ties between rows with the same event time (the
    latest write wins). ``field_mapping`` renames source columns to feature / join-key names.
    Relative paths are resolved against the feature repo.
    """

    path: str
    timestamp_field: str
    created_timestamp_column: str | None
    field_mapping: dict[str, str]
    name: str
    description: str

    def __init__(
        self,
        path: str,
        timestamp_field: str,
        created_timestamp_column: str | None = None,
        field_mapping: Mapping[str, str] | None = None,
        name: str | None = None,
        description: str = "",
    ) -> None:
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise DefinitionError(f"FileSource: path must be a non-empty string, got {path!r}")
        path = os.fspath(path)
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

    def source_column(self, name: str) -> str:
        """The source column that feeds feature / key ``name`` (inverse of field_mapping)."""
        for src, dst in self.field_mapping.items():
            if dst == name:
                return src
        return name

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "file",
            "name": self.name,
            "path": self.path,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_column": self.created_timestamp_column,
            "field_mapping": dict(self.field_mapping),
            "description": self.description,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FileSource:
        spec = {k: v for k, v in spec.items() if k != "type"}
        return cls(**spec)

    def __repr__(self) -> str:
        return f"FileSource(name={self.name!r}, path={self.path!r})"


def source_from_spec(spec: dict[str, Any]) -> FileSource:
    kind = spec.get("type")
    if kind == "file":
        return FileSource.from_spec(spec)
    raise DefinitionError(f"unknown source type {kind!r} in the registry")
