"""The ``skewless`` command line: one module per command group, logic stays in services.

``main.py`` builds the app and registers each group; ``_common.py`` holds what they share
(the console, the repo option, error reporting).
"""

from skewless.cli.main import app, main

__all__ = ["app", "main"]
