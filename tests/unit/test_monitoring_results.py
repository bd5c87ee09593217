"""Monitoring results' files (docs/monitoring.md, docs/audit.md): written atomically with the
umask's permissions, so that a feature server running as another user can export them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from skewless.monitoring.results import write_json_atomic


def test_a_result_file_gets_the_umask_permissions_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "monitoring" / "last.json", {"status": "OK"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text()) == {"status": "OK"}
    assert [p.name for p in path.parent.iterdir()] == ["last.json"]   # no temp file left
