"""Every example job file in examples/ is a valid JobSpec (and every child of a sweep is valid too)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jobs.children import expand, size_of
from jobs.jobspec import parse_job_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: Path) -> None:
    spec = parse_job_spec(yaml.safe_load(path.read_text()))
    if size_of(spec):
        assert len(expand(spec)) == size_of(spec)
