"""Whole-stack snapshot (asset hashes masked): any change to the template is a reviewed change.

Refresh after an intended change with `UPDATE_SNAPSHOTS=1 make test`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "TrainingAutoscaler.template.json"
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def _masked(raw: dict) -> str:
    return _ASSET_HASH.sub("<asset-hash>", json.dumps(raw, indent=1, sort_keys=True)) + "\n"


def test_template_matches_snapshot(raw_template: dict) -> None:
    current = _masked(raw_template)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), "no snapshot yet: run UPDATE_SNAPSHOTS=1 make test and commit it"
    assert current == SNAPSHOT.read_text(), "template changed: review it, then run UPDATE_SNAPSHOTS=1 make test"
