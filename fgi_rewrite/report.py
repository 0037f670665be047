"""The Report: everything a run found, and the one place that decides exit codes.

Exit codes (as black): 0 nothing to change (or changes written); 1 with ``--check`` when a file
would change or a surrogate was refused; 123 when a file could not be read or parsed, or on an
internal error.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from fgi_rewrite.codes import Severity
from fgi_rewrite.model import Diagnostic
from fgi_rewrite.rewrite import CallSite

EXIT_OK = 0
EXIT_CHANGES = 1
EXIT_ERROR = 123


@dataclass(frozen=True)
class FileResult:
    path: Path
    before: bytes
    after: bytes
    call_sites: tuple[CallSite, ...] = ()

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass
class Report:
    check: bool = False
    files_scanned: int = 0
    surrogates_found: int = 0
    surrogates: list[str] = field(default_factory=list)
    results: list[FileResult] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[FileResult]:
        return sorted((r for r in self.results if r.changed), key=lambda r: str(r.path))

    def of(self, severity: Severity) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.code.severity is severity]

    @property
    def call_sites(self) -> int:
        return sum(len(r.call_sites) for r in self.changed)

    def exit_code(self) -> int:
        if self.internal_errors or self.of(Severity.ERROR):
            return EXIT_ERROR
        if self.check and (self.changed or self.of(Severity.REFUSAL)):
            return EXIT_CHANGES
        return EXIT_OK

    def summary(self, wrote: bool) -> str:
        verb = "rewritten" if wrote else "would be rewritten"
        refused = len({d.message.split(":")[0] for d in self.of(Severity.REFUSAL)})
        parts = [
            f"{self.files_scanned} file{'s' if self.files_scanned != 1 else ''} scanned",
            f"{self.surrogates_found} surrogate{'s' if self.surrogates_found != 1 else ''} found",
            f"{self.call_sites} call site{'s' if self.call_sites != 1 else ''} {verb}"
            f" in {len(self.changed)} file{'s' if len(self.changed) != 1 else ''}",
            f"{refused} refused",
        ]
        errors = len(self.of(Severity.ERROR)) + len(self.internal_errors)
        if errors:
            parts.append(f"{errors} error{'s' if errors != 1 else ''}")
        return ", ".join(parts) + "."

    def diagnostics_sorted(self) -> list[Diagnostic]:
        return sorted(
            set(self.diagnostics),
            key=lambda d: (str(d.location.path), d.location.line, d.location.column, d.code.code),
        )


def unified_diff(result: FileResult, encoding: str = "utf-8") -> str:
    before = result.before.decode(encoding, errors="replace").splitlines(keepends=True)
    after = result.after.decode(encoding, errors="replace").splitlines(keepends=True)
    lines = difflib.unified_diff(before, after, f"{result.path}\t(original)",
                                 f"{result.path}\t(rewritten)")
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
