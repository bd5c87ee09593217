"""The example feature repo that ``skewless init`` creates: the fraud / user-spend example.

``FILES`` are copied into the new repo as they are; ``generate_data`` then writes its Parquet
sources and labels (deterministic, seeded), so the repo is runnable at once.
"""

from __future__ import annotations

FILES = ("feature_store.yaml", "features.py", "README.md")

__all__ = ["FILES"]
