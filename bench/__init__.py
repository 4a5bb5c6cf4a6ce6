"""Discrete-event benchmark of the scaling policies (``python -m bench``).

The simulator runs the product's real scaling code from ``lambdas/`` unmodified, so the
Lambda asset root goes on ``sys.path`` here (pytest and mypy already have it).
"""

from __future__ import annotations

import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
