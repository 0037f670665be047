"""Shared helpers for the fixture tests: where cases live and how to run the tool on a copy."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from fgi_rewrite import Options, run
from fgi_rewrite.core.codes import Severity
from fgi_rewrite.pipeline.report import Report

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# The case's entry (a module, or a Jupyter notebook) and its expected rewrite.
EXPECTED_FILES = {"input.py": "expected.py", "input.ipynb": "expected.ipynb"}
EXPECTED_FILE = EXPECTED_FILES["input.py"]
EXPECTED_DIR = "expected"  # expected rewrite of other files of the case, mirrored
EXPECTED_REPORT = "expected_report.txt"
SOURCE_PATTERNS = ("*.py", "*.ipynb")
_NOT_INPUT = {*EXPECTED_FILES.values(), EXPECTED_DIR, EXPECTED_REPORT, "__pycache__"}


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path

    @property
    def entry(self) -> str:
        return "input.py" if (self.directory / "input.py").is_file() else "input.ipynb"

    @property
    def notebook(self) -> bool:
        return self.entry == "input.ipynb"

    def input_files(self) -> list[Path]:
        return sorted(
            p.relative_to(self.directory)
            for pattern in SOURCE_PATTERNS
            for p in self.directory.rglob(pattern)
            if not (set(p.relative_to(self.directory).parts) & _NOT_INPUT)
        )

    def expected_path(self, relative: Path) -> Path:
        """Where the expected rewrite of an input file is (or would be)."""
        if relative == Path(self.entry):
            return self.directory / EXPECTED_FILES[self.entry]
        return self.directory / EXPECTED_DIR / relative

    def expected(self, relative: Path) -> Path | None:
        candidate = self.expected_path(relative)
        return candidate if candidate.is_file() else None

    @property
    def rewritten(self) -> bool:
        return any(self.expected(p) for p in self.input_files())


def cases() -> list[Case]:
    return [
        Case(d.name, d)
        for d in sorted(FIXTURES.iterdir())
        if d.is_dir() and any((d / entry).is_file() for entry in EXPECTED_FILES)
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
