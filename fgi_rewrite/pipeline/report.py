"""The Report: everything a run found, and the one place that decides exit codes.

Exit codes (as black):

* 0: nothing to change, or the changes were written (also when no file was given or found);
* 1: with ``--check``, a file would change or a surrogate was refused;
* 2: a usage error (unknown option, bad value, bad configuration file), reported by click;
* 123: a file could not be read, parsed or written, or an internal error occurred;
* 130: interrupted (Ctrl-C); files already written are complete, the others untouched.

``--format json`` prints ``to_json(report)``: see ``JSON_SCHEMA_VERSION`` and README.md.
"""

from __future__ import annotations

import difflib
import io
import tokenize
from dataclasses import dataclass, field
from typing import Any

from fgi_rewrite import __version__
from fgi_rewrite.core.codes import Severity
from fgi_rewrite.core.model import Diagnostic, Location, RunMode
from fgi_rewrite.core.results import (
    CallSite,
    FileResult,
    FunctionRecord,
    FunctionVerdict,
    ModuleCheck,
    Verification,
)
from fgi_rewrite.project.notebook import cell_diff, is_notebook

EXIT_OK = 0
EXIT_CHANGES = 1
EXIT_USAGE = 2
EXIT_ERROR = 123
EXIT_INTERRUPTED = 130

# Bumped only when a key changes meaning or disappears; new keys may be added at any time.
JSON_SCHEMA_VERSION = 1


@dataclass
class Report:
    check: bool = False
    files_scanned: int = 0
    surrogates_found: int = 0
    functions: list[FunctionRecord] = field(default_factory=list)
    results: list[FileResult] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    verifications: list[Verification] = field(
        default_factory=list
    )  # verify/stage.py, per surrogate
    module_checks: list[ModuleCheck] = field(default_factory=list)  # --verify-modules, per class

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
            key=lambda d: (
                str(d.location.path),
                -1 if d.location.cell is None else d.location.cell,
                d.location.line,
                d.location.column,
                d.code.code,
                d.message,
            ),
        )


def source_encoding(data: bytes) -> str:
    """The encoding Python reads ``data`` with (its coding cookie or BOM; UTF-8 otherwise)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        return "utf-8"
    return encoding


def unified_diff(result: FileResult, encoding: str | None = None) -> str:
    if is_notebook(result.path):  # per changed cell, headed ``<path>:cell_<index>``
        return cell_diff(str(result.path), result.before, result.after)
    encoding = encoding or source_encoding(result.before)
    before = result.before.decode(encoding, errors="replace").splitlines(keepends=True)
    after = result.after.decode(encoding, errors="replace").splitlines(keepends=True)
    lines = difflib.unified_diff(
        before, after, f"{result.path}\t(original)", f"{result.path}\t(rewritten)"
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


# ---- colors ------------------------------------------------------------------------------------

_RESET = "\033[0m"


def color_diff(text: str) -> str:
    """ANSI colors for a unified diff, as black and git show it."""
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body) :]
        if line.startswith(("+++", "---")):
            out.append(f"\033[1m{body}{_RESET}{end}")
        elif line.startswith("@@"):
            out.append(f"\033[36m{body}{_RESET}{end}")
        elif line.startswith("+"):
            out.append(f"\033[32m{body}{_RESET}{end}")
        elif line.startswith("-"):
            out.append(f"\033[31m{body}{_RESET}{end}")
        else:
            out.append(line)
    return "".join(out)


# ---- JSON --------------------------------------------------------------------------------------


def _location(location: Location) -> dict[str, Any]:
    # "cell": the index of a notebook's cell in its "cells" (the line is the cell's); else null.
    return {
        "path": str(location.path),
        "line": location.line,
        "column": location.column,
        "cell": location.cell,
    }


def _call_site(site: CallSite) -> dict[str, Any]:
    return {"surrogate": site.surrogate, **_location(site.location), "style": site.style}


def _verification(verification: Verification | None) -> dict[str, Any] | None:
    if verification is None:
        return None
    return {
        "status": verification.status,
        "checks": dict(verification.checks),
        "written": verification.written,
        "detail": verification.detail,
        "hyperparameters": verification.hyper,
        "notes": list(verification.notes),
        "plot": verification.plot or None,
    }


def to_json(report: Report, mode: RunMode, diffs: bool = False) -> dict[str, Any]:
    """The stable, documented JSON form of a report (README.md, "JSON output")."""
    refused = {d.message.split(":")[0] for d in report.of(Severity.REFUSAL)}
    verifications = {v.surrogate: v for v in report.verifications}
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": "fgi-rewrite",
        "version": __version__,
        "mode": mode,
        "exit_code": report.exit_code(),
        "summary": {
            "files_scanned": report.files_scanned,
            "files_changed": len(report.changed),
            "surrogates_found": report.surrogates_found,
            "call_sites_rewritten": report.call_sites,
            "refused": len(refused),
            "errors": len(report.of(Severity.ERROR)) + len(report.internal_errors),
        },
        "functions": [
            {
                "name": record.qualname,
                **_location(record.location),
                "verdict": record.verdict,
                "params": list(record.params),
                "f": record.f,
                "g": dict(record.g) if record.verdict is FunctionVerdict.SURROGATE else None,
                "code": record.code,
                "message": record.message,
                "verification": _verification(verifications.get(record.qualname)),
            }
            for record in sorted(
                report.functions,
                key=lambda r: (
                    str(r.location.path),
                    -1 if r.location.cell is None else r.location.cell,
                    r.location.line,
                    r.qualname,
                ),
            )
        ],
        "files": [
            {
                "path": str(result.path),
                "changed": result.changed,
                "call_sites": [_call_site(site) for site in result.call_sites],
                "diff": unified_diff(result) if diffs else None,
            }
            for result in report.changed
        ],
        "diagnostics": [
            {
                "code": d.code.code,
                "severity": d.code.severity.value,
                **_location(d.location),
                "message": d.message,
            }
            for d in report.diagnostics_sorted()
        ],
        "internal_errors": list(report.internal_errors),
        "modules": [  # --verify-modules
            {
                "path": str(check.path),
                "class": check.qualname or None,
                "state": check.state,
                "detail": check.detail,
                "original": check.original or None,
                "original_detail": check.original_detail,
            }
            for check in report.module_checks
        ],
    }
