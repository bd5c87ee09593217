"""``python -m skewless.cli`` runs the same CLI as the ``skewless`` script."""

from skewless.cli.main import main

main()
