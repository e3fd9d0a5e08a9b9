"""``python -m academy_ml`` runs the command line."""

from __future__ import annotations

from academy_ml.deploy.cli import main

main()
