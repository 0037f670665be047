"""Idempotence on the example project: after a rewrite, a second run (``--check``) finds nothing
to change, in every style. (Each fixture is checked in tests/test_fixtures.py; the 9-library
corpus by ``benchmarks/corpus.py``.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fgi_rewrite import Options, run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

STYLES = {
    "inline": {},
    "function": {"style": "function"},
    "inline-remove-unused": {"remove_unused": True},
    "function-remove-unused": {"style": "function", "remove_unused": True},
}


@pytest.mark.parametrize("name", list(STYLES))
def test_second_run_on_the_examples_changes_nothing(name: str, tmp_path: Path) -> None:
    options = STYLES[name]
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("__pycache__"))
    first = run([root], Options(**options))  # type: ignore[arg-type]
    assert first.changed, "the examples have call sites to rewrite"
    assert not first.internal_errors
    snapshot = {p: p.read_bytes() for p in root.rglob("*.py")}
    second = run([root], Options(check=True, **options))  # type: ignore[arg-type]
    assert not second.internal_errors
    assert [r.path for r in second.changed] == []
    assert second.exit_code() == 0
    assert {p: p.read_bytes() for p in root.rglob("*.py")} == snapshot
