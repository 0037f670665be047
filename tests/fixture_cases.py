"""Shared helpers for the fixture tests: where cases live and how to run the tool on a copy."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from fgi_rewrite import Options, run
from fgi_rewrite.core.codes import Severity
from fgi_rewrite.pipeline.report import Report

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXPECTED_FILE = "expected.py"  # expected rewrite of input.py
EXPECTED_DIR = "expected"  # expected rewrite of other files of the case, mirrored
EXPECTED_REPORT = "expected_report.txt"
_NOT_INPUT = {EXPECTED_FILE, EXPECTED_DIR, EXPECTED_REPORT, "__pycache__"}


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path

    def input_files(self) -> list[Path]:
        return sorted(
            p.relative_to(self.directory)
            for p in self.directory.rglob("*.py")
            if not (set(p.relative_to(self.directory).parts) & _NOT_INPUT)
        )

    def expected(self, relative: Path) -> Path | None:
        candidate = (
            self.directory / EXPECTED_FILE
            if relative == Path("input.py")
            else self.directory / EXPECTED_DIR / relative
        )
        return candidate if candidate.is_file() else None

    @property
    def rewritten(self) -> bool:
        return any(self.expected(p) for p in self.input_files())


def cases() -> list[Case]:
    return [
        Case(d.name, d)
        for d in sorted(FIXTURES.iterdir())
        if d.is_dir() and (d / "input.py").is_file()
    ]


def copy_inputs(case: Case, destination: Path) -> Path:
    root = destination / case.name
    for relative in case.input_files():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(case.directory / relative, target)
    return root


def run_case(root: Path, **options: object) -> Report:
    return run([root], Options(**options))  # type: ignore[arg-type]


def report_lines(report: Report, root: Path) -> list[str]:
    """Diagnostics a user sees by default (not the FGI0xx notes), with paths relative to root."""
    return [
        d.render().replace(f"{root}/", "")
        for d in report.diagnostics_sorted()
        if d.code.severity is not Severity.INFO
    ]
