"""``python -m mofa`` (with ``examples/`` on ``PYTHONPATH``; ``make demo`` does this)."""

from __future__ import annotations

import sys

from mofa.run import main

sys.exit(main())
