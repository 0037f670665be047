"""One run over a set of paths: discover → index → analyze → rewrite → report (→ write)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fgi_rewrite import codes
from fgi_rewrite.analyze import analyze
from fgi_rewrite.discover import discover
from fgi_rewrite.index import ClassInfo, ModuleInfo, ProjectIndex, SourceError
from fgi_rewrite.model import Diagnostic, Location, Surrogate
from fgi_rewrite.report import FileResult, Report
from fgi_rewrite.rewrite import add_functions, ensure_imports, rewrite_module

_ALIAS = re.compile(r"(\w+)\s*=\s*[\w.]+\.apply\b")


@dataclass(frozen=True)
class Options:
    style: str = "inline"  # or "function"
    check: bool = False
    diff: bool = False


def run(paths: Sequence[Path], options: Options) -> Report:
    report = Report(check=options.check)
    fileset = discover(paths)
    for path in fileset.missing:
        report.diagnostics.append(
            Diagnostic(codes.UnreadableFile, Location(path, 1, 1), "no such file or directory")
        )
    index = ProjectIndex(fileset.root, fileset.project)
    classes = index.function_classes()
    analyses = {info.qualname: analyze(index, info) for info in classes}
    surrogates = {q: r for q, r in analyses.items() if isinstance(r, Surrogate)}
    targets = set(fileset.targets)
    for result in analyses.values():
        if isinstance(result, Diagnostic) and result.location.path in targets:
            report.diagnostics.append(result)
    terms = _prefilter_terms(index, classes)
    report.files_scanned = len(fileset.targets)
    for path in fileset.targets:
        text = index.text(path)
        try:
            module = index.module(path)
        except SourceError as exc:
            report.diagnostics.append(
                Diagnostic(codes.UnreadableFile, Location(path, 1, 1), str(exc))
            )
            continue
        if not surrogates or not any(term in text for term in terms):
            continue
        report.results.append(_rewrite_file(index, module, analyses, report, options))
    used = {site.surrogate for result in report.results for site in result.call_sites}
    report.surrogates_found = len(
        {q for q, s in surrogates.items() if s.location.path in targets} | used
    )
    if not options.check and not options.diff:
        for result in report.changed:
            write_atomic(result.path, result.after)
    return report


def _prefilter_terms(index: ProjectIndex, classes: Sequence[ClassInfo]) -> set[str]:
    """Substrings one of which any file with a call site must contain."""
    terms = {"apply", *(info.name for info in classes)}
    for path in index.candidate_files():
        terms.update(_ALIAS.findall(index.text(path)))
    return terms


def _rewrite_file(
    index: ProjectIndex,
    module: ModuleInfo,
    analyses: dict[str, Surrogate | Diagnostic],
    report: Report,
    options: Options,
) -> FileResult:
    before = module.tree.bytes
    tree, rewriter = rewrite_module(index, module, analyses, options.style, lambda q: False)
    report.diagnostics.extend(rewriter.diagnostics)
    if not rewriter.call_sites:
        return FileResult(module.path, before, before)
    functions = []
    for qualname, name in rewriter.functions.items():
        surrogate = analyses[qualname]
        assert isinstance(surrogate, Surrogate)
        anchor = surrogate.short_name if surrogate.module == module.name else ""
        functions.append((anchor, surrogate, name))
    tree = add_functions(tree, functions)
    needs = ["torch"]
    if any(
        isinstance(analyses[c.surrogate], Surrogate)
        and analyses[c.surrogate].needs_math  # type: ignore[union-attr]
        for c in rewriter.call_sites
    ):
        needs.append("math")
    tree = ensure_imports(tree, needs)
    return FileResult(module.path, before, tree.bytes, tuple(rewriter.call_sites))


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, ``os.replace``; the file mode is kept."""
    mode = path.stat().st_mode
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".fgi-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode & 0o7777)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
