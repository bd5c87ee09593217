"""The compaction manifest of a batch folder: which files a merged file replaces.

``skewless compact`` (``skewless.services.compact``) merges a push source's small files into
larger ones. The merged file holds the same rows as the files it replaces, so a reader must
never read both, nor miss either. The manifest makes the switch one atomic step for readers:

- ``<folder>/_skewless/compactions.json`` (hidden from readers: its path starts with ``_``)
  maps each merged file's name to the names of the files it replaces.
- A reader lists the folder's files first, then reads the manifest: for each merged file *in
  its listing*, it leaves out the files that merged file replaces (:func:`live_files`).
- The compactor writes the manifest entry first, then renames the merged file into place (the
  switch), and deletes the replaced files only a grace period later.

So a reader that listed the folder before the switch reads the small files (the merged one is
not in its listing: the manifest entry is ignored); one that listed it after reads the merged
file and leaves the small ones out. Either way every row once (docs/streams.md, "Compaction").

``<folder>/_skewless/compacted/<name>`` marks a replaced push file (its content digest inside),
so a retried push of that batch id is still recognised once its file is gone.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

META_DIR = "_skewless"
MANIFEST = "compactions.json"
MARKERS = "compacted"


def manifest_path(directory: Path) -> Path:
    return directory / META_DIR / MANIFEST


def read_manifest(directory: Path) -> dict[str, dict[str, Any]]:
    """``{merged file name: {"replaces": [names], "switched_at": unix s | None,
    "deleted_at": unix s | None}}``; empty when the folder was never compacted. A manifest
    that cannot be read is an error (reading past it could count rows twice)."""
    path = manifest_path(directory)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
        merged = data["merged"]
        if not isinstance(merged, dict):
            raise ValueError("'merged' is not an object")
        return merged
    except (ValueError, KeyError, TypeError) as e:
        from skewless.errors import SourceError
        raise SourceError(f"the compaction manifest {path} is damaged ({e}); reading the folder "
                          "could count rows twice",
                          hint="run `skewless compact --push-source NAME` to check it, or restore "
                          "the file (docs/streams.md, \"Compaction\")") from None


def write_manifest(directory: Path, merged: dict[str, dict[str, Any]]) -> None:
    """Replace the manifest atomically (temp file, fsync, rename, fsync of the folder)."""
    meta = directory / META_DIR
    meta.mkdir(exist_ok=True)
    tmp = meta / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w") as fh:
        json.dump({"version": 1, "merged": merged}, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, manifest_path(directory))
    fsync_dir(meta)


def live_files(directory: Path, files: Iterable[str]) -> list[str]:
    """``files`` (paths under ``directory``, as listed by the reader, in order) without those a
    merged file of the same listing replaces. Call it *after* listing: see the module doc."""
    files = list(files)
    if not (directory / META_DIR).is_dir():
        return files
    merged = read_manifest(directory)
    if not merged:
        return files
    top = os.path.abspath(directory)
    listed = {os.path.basename(f) for f in files if os.path.dirname(os.path.abspath(f)) == top}
    drop: set[str] = set()
    for name, entry in merged.items():
        if name in listed:
            drop.update(entry.get("replaces", ()))
    if not drop:
        return files
    return [f for f in files
            if not (os.path.dirname(os.path.abspath(f)) == top and os.path.basename(f) in drop)]


def marker(directory: Path, file_name: str) -> Path:
    """The marker of a replaced push file ``file_name`` (it holds the push's content digest)."""
    return directory / META_DIR / MARKERS / file_name


def was_compacted(directory: Path, file_name: str) -> str | None:
    """The content digest recorded for the push file ``file_name`` compacted away ("" when none
    was recorded), or None when it never was."""
    try:
        return marker(directory, file_name).read_text().strip()
    except FileNotFoundError:
        return None


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # platforms without directory fds (Windows)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["META_DIR", "fsync_dir", "live_files", "manifest_path", "marker", "read_manifest",
           "was_compacted", "write_manifest"]
