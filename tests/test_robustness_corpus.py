"""No crash and no change on a sample (>= 1,000 files) of unrelated code: packages of the
standard library and of site-packages, as ``benchmarks/robustness.py`` does for the whole of both
(docs/robustness.md). Nothing is copied and nothing is written (``check=True``).

Each standard-library package is run as a project of its own: left to itself the tool would take
the nearest directory holding ``.git`` as the project root, and for a pyenv Python that is
``~/.pyenv``, nine Python versions (about 15,000 files) whose every Function class it would index
(about 140 s a run; docs/robustness.md). site-packages packages keep their real root (this
repository, whose ``pyproject.toml`` is the nearest).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fgi_rewrite.project import discover as discover_module

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import robustness  # noqa: E402

STDLIB_PACKAGES = (
    "email",
    "json",
    "asyncio",
    "unittest",
    "xml",
    "importlib",
    "multiprocessing",
    "concurrent",
    "http",
    "urllib",
    "logging",
    "idlelib",
    "tkinter",
    "ctypes",
    "distutils",
    "lib2to3",  # its tests/data holds Python 2 files: unparsable inputs, not crashes
)
SITE_PACKAGES = ("libcst", "_pytest", "hypothesis", "click")
# Only scanned while the sample is still under 1,000 files (a newer Python has no lib2to3 or
# distutils).
RESERVE = ("mypy", "numpy", "black")
MINIMUM = 1000


def _units() -> list[tuple[robustness.Unit, bool, bool]]:
    """(unit, run as its own project, reserve)."""
    stdlib, site = robustness.stdlib_dir(), robustness.site_packages_dir()
    units = [(robustness.Unit(n, [stdlib / n]), True, False) for n in STDLIB_PACKAGES]
    units += [(robustness.Unit(n, [site / n]), False, False) for n in SITE_PACKAGES]
    units += [(robustness.Unit(n, [site / n]), False, True) for n in RESERVE]
    return [unit for unit in units if unit[0].paths[0].is_dir()]


def test_sample_has_no_crash_and_no_change(monkeypatch: pytest.MonkeyPatch) -> None:
    real_root = discover_module.find_project_root
    files = 0
    crashes: list[str] = []
    changed: list[str] = []
    unparsable: list[str] = []
    for unit, own_root, reserve in _units():
        if reserve and files >= MINIMUM:
            continue
        with monkeypatch.context() as patch:
            if own_root:
                top = unit.paths[0]
                patch.setattr(discover_module, "find_project_root", lambda paths, top=top: top)
            result = robustness.run_unit(unit)
        assert discover_module.find_project_root is real_root
        files += result.files
        crashes += result.crashes
        changed += [str(c["path"]) for c in result.changed]
        unparsable += result.unparsable
        assert result.exit_code in (0, 1, 123), unit.name  # 1: a refusal; 123: unparsable
    print(f"{files} files, {len(unparsable)} unparsable inputs")
    assert files >= MINIMUM, f"only {files} files in the sample"
    assert crashes == []
    assert changed == []
    # The unparsable inputs are Python's own verdict too (checked in run_unit), e.g. lib2to3's
    # Python 2 test data; every one is reported, none stops the run.
    assert all("cannot" in u for u in unparsable)
