"""The HTTP feature server (``skewless serve``): thin routes over ``FeatureStore``.

``create_app(store)`` builds the ASGI app; ``docs/server.md`` documents the endpoints. Imported
lazily: the CLI's supervisor process (``skewless.server.workers``) needs none of the app.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app_from_env", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from skewless.server import app
        return getattr(app, name)
    raise AttributeError(f"module 'skewless.server' has no attribute {name!r}")
