"""Jupyter notebooks in a run: what a notebook's module view leaves out is reported, and the
rewritten module goes back into the notebook's cells at the end.

The index reads a notebook as one module of its code cells (``project/notebook.py``), so the
per-file work, verification, the generated functions and ``--remove-unused`` treat it as any
module; its ``FileResult`` holds module text until ``write_back`` turns it into the notebook's
bytes (only the changed cells' ``source`` differs). Reported here, per notebook target:

* FGI901 for each Python cell that does not parse: that cell is left as it is, the rest of the
  notebook is rewritten (and the run exits 123, as for any file that does not parse);
* FGI911 for a surrogate called inside an IPython magic (``%timeit Fn.apply(x)``), which runs
  the original Function: magics are not Python and are never rewritten;
* FGI010 (``-v``) for each cell in another language (``%%bash``, an R notebook), left alone.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import libcst as cst

from fgi_rewrite.analysis.analyze import analyze
from fgi_rewrite.core import codes
from fgi_rewrite.core.model import Diagnostic, Location, Surrogate
from fgi_rewrite.core.results import FileResult
from fgi_rewrite.pipeline import targets
from fgi_rewrite.pipeline.report import Report
from fgi_rewrite.pipeline.targets import TargetContext, TargetOutcome
from fgi_rewrite.project.entities import ApplyRef
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.notebook import NotebookModule, is_notebook, magics, rewrite_notebook
from fgi_rewrite.project.notebook_json import NotebookError
from fgi_rewrite.project.skips import skipped_function
from fgi_rewrite.project.source_module import ModuleInfo, SourceError

# A dotted name in a magic's text: a callee or an ``apply`` reference to resolve.
_DOTTED = re.compile(r"(?<![\w.$])[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*")


def process_target(index: ProjectIndex, context: TargetContext, path: Path) -> TargetOutcome:
    """``targets.process_target``; for a notebook, also what its module does not show."""
    known = set(context.analyses)
    outcome = targets.process_target(index, context, path)
    if not is_notebook(path):
        return outcome
    try:
        hidden = hidden_diagnostics(index, context, path)
    except Exception as exc:  # the rewrite stands; only this report is missing
        error = f"{path}: checking the magics: {type(exc).__name__}: {exc}"
        return replace(outcome, internal_error=outcome.internal_error or error)
    return replace(
        outcome,
        diagnostics=(*outcome.diagnostics, *hidden),
        specializations=tuple((k, a) for k, a in context.analyses.items() if k not in known),
    )


def hidden_diagnostics(
    index: ProjectIndex, context: TargetContext, path: Path
) -> tuple[Diagnostic, ...]:
    """The cells left out of a notebook's module, and surrogates called in its magics."""
    try:
        # After the rewrite's parse, if it parsed the notebook: libcst may have left out a
        # cell Python's parser accepts (``ProjectIndex.module``).
        notebook = index.notebook(path)
    except SourceError:
        return ()  # reported for the whole file
    found: list[Diagnostic] = []
    other_language = False
    for cell in notebook.skipped:
        at = Location(path, cell.line, 1, cell.index)
        reason = re.sub(r" \(line \d+\)$", "", cell.reason)
        if cell.unparsable:
            message = f"{reason}; this cell is left unchanged (the other cells are not)"
            found.append(Diagnostic(codes.UnreadableFile, at, message))
        elif cell.reason.endswith(" notebook"):  # the kernel's language: said once
            if not other_language:
                message = f"{cell.reason}: not Python, left unchanged"
                found.append(Diagnostic(codes.NotebookCellSkipped, Location(path, 1, 1), message))
            other_language = True
        else:
            message = f"{cell.reason}: not Python, this cell is left unchanged"
            found.append(Diagnostic(codes.NotebookCellSkipped, at, message))
    found += _magic_calls(index, context, path, notebook)
    return tuple(found)


def _magic_calls(
    index: ProjectIndex, context: TargetContext, path: Path, notebook: NotebookModule
) -> list[Diagnostic]:
    """FGI911 for each surrogate a magic applies (or passes): it is not rewritten."""
    listed = magics(notebook)
    text = "\n".join(original for _, original in listed)
    if not listed or not context.rewritable or not context.names.mentioned_in(text):
        return []
    module = index.module(path)
    found = []
    for position, original in listed:
        for match in _DOTTED.finditer(original):
            dotted = re.sub(r"\s+", "", match.group())
            called = original[match.end() :].lstrip().startswith("(")
            if not (called or dotted.endswith(".apply")):
                continue
            surrogate = _surrogate_of(index, context, module, dotted)
            if surrogate is None:
                continue
            first_line = "\n" not in original[: match.start()]
            column = position.column + match.start() if first_line else position.column
            found.append(
                Diagnostic(
                    codes.SurrogateInMagic,
                    Location(path, position.line, column, position.cell),
                    f"{surrogate.short_name}: applied in the IPython magic "
                    f"{original.splitlines()[0]!r}, which is not rewritten (it runs the "
                    "original Function)",
                    subject=surrogate.qualname,
                )
            )
    return found


def _surrogate_of(
    index: ProjectIndex, context: TargetContext, module: ModuleInfo, dotted: str
) -> Surrogate | None:
    try:
        expression = cst.parse_expression(dotted)
    except cst.ParserSyntaxError:
        return None
    entity = index.resolve_expr(module, expression)
    if not isinstance(entity, ApplyRef):
        return None
    info = entity.info
    analysis = context.analyses.get(info.qualname)
    if analysis is None:  # defined outside the files given: analyzed as a call site would be
        analysis = skipped_function(index, info) or analyze(index, info)
        context.analyses[info.qualname] = analysis
    return analysis if isinstance(analysis, Surrogate) else None


def write_back(index: ProjectIndex, report: Report) -> None:
    """Each notebook's result from module text to the notebook's bytes, once every edit of the
    run is in; a rewrite that cannot be put back into the cells is dropped (FGI910)."""
    for i, result in enumerate(report.results):
        if not is_notebook(result.path):
            continue
        notebook = index.notebook(result.path)
        data = notebook.notebook.data
        try:
            after = (
                rewrite_notebook(notebook, result.after.decode("utf-8")) if result.changed else data
            )
        except (NotebookError, UnicodeDecodeError) as exc:
            report.diagnostics.append(
                Diagnostic(
                    codes.NotebookNotWritten,
                    Location(result.path, 1, 1),
                    f"the rewrite cannot be put back into the notebook's cells ({exc}); "
                    "the notebook is left unchanged",
                )
            )
            after = data
            result = FileResult(result.path, data, data)
        report.results[i] = FileResult(result.path, data, after, result.call_sites)
