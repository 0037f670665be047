"""One run over a set of paths: discover → index → analyze → rewrite → verify → report (→ write).

Nothing here imports torch or executes the code it reads. A failure in one file (unreadable,
unparsable, unwritable, or an internal error while rewriting it) is reported against that file and
the others are still processed; a file is only ever replaced whole (``files.write_atomic``).
The per-file work (``targets.py``: finding and analyzing Functions, checking and rewriting
targets) runs in this process or, for a large run with ``jobs`` > 1, in worker processes
(``parallel.py``) with the same result; everything that needs the whole project's results
(``finish.py``: verification, generated functions placed in other modules, ``--remove-unused``,
writing) runs here, afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from fgi_rewrite.core import codes
from fgi_rewrite.core.codes import Severity
from fgi_rewrite.core.model import Diagnostic, Location, Surrogate, VerifyLevel, shown_path
from fgi_rewrite.core.results import CallSite
from fgi_rewrite.pipeline import finish, notebooks, parallel
from fgi_rewrite.pipeline.options import (
    ANALYZING,
    CHECKING,
    STDIN,
    VERIFYING,
    Options,
    Progress,
    no_progress,
    stdin_display,
)
from fgi_rewrite.pipeline.report import Report
from fgi_rewrite.pipeline.targets import (
    FoundFunction,
    TargetContext,
    TargetOutcome,
    find_functions,
    form_choice,
)
from fgi_rewrite.project import elide
from fgi_rewrite.project.discover import FileSet, Filters, discover
from fgi_rewrite.project.higher_order import scan_project
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.prefilter import CalleeNames
from fgi_rewrite.project.source_module import SourceReader
from fgi_rewrite.rewrite.formatting import project_styles
from fgi_rewrite.verify.module_check import verify_modules

__all__ = ["Options", "Progress", "run"]

Analyses = dict[str, Surrogate | Diagnostic]
Remote = dict[Path, list[tuple[Surrogate, str]]]  # per calling file: (surrogate, function name)


def run(paths: Sequence[Path], options: Options, progress: Progress | None = None) -> Report:
    report = Report(check=options.check)
    filters = Filters.from_strings(
        options.exclude, options.extend_exclude, options.force_exclude, options.gitignore
    )
    overlay: dict[Path, bytes] = {}
    if options.stdin is not None:
        name = options.stdin_filename
        overlay[Path(name).absolute().resolve() if name else Path.cwd().resolve() / STDIN] = (
            options.stdin
        )
    fileset = discover(
        [p for p in paths if str(p) != STDIN],
        filters,
        virtual=tuple(overlay),
        walk_project=options.stdin is None or options.stdin_filename is not None,
    )
    for path, reason in fileset.errors:
        report.diagnostics.append(Diagnostic(codes.UnreadableFile, Location(path, 1, 1), reason))
    for path, reason in fileset.skipped:
        report.diagnostics.append(Diagnostic(codes.SkippedFile, Location(path, 1, 1), reason))
    for path, reason in fileset.links_outside:
        report.diagnostics.append(
            Diagnostic(codes.LinkOutsideProject, Location(path, 1, 1), reason)
        )
    if fileset.targets:
        try:
            read = SourceReader(overlay, fileset.project)
            _process(fileset, read, options, report, progress or no_progress)
        except Exception as exc:  # nothing is written after an internal error in the index
            report.internal_errors.append(f"{type(exc).__name__}: {exc}")
            report.results.clear()
    for real in overlay:
        _relabel(report, _renamed(real, stdin_display(options)))
    if not options.check and not options.diff:
        finish.write_results(report, skip={stdin_display(options)} if overlay else set())
    if _given_relative(paths, options):
        _relabel(report, relative_to_cwd)
    return report


def _given_relative(paths: Sequence[Path], options: Options) -> bool:
    """Paths are reported as the user gave them: relative to the current directory when no path
    given (nor ``--stdin-filename``) is absolute, so that ``--diff`` is a patch to apply here."""
    given = [p for p in paths if str(p) != STDIN]
    if options.stdin_filename is not None:
        given.append(Path(options.stdin_filename))
    return not any(p.is_absolute() for p in given)


def _renamed(real: Path, shown: Path) -> Callable[[Path], Path]:
    return lambda path: shown if path == real else path


def relative_to_cwd(path: Path) -> Path:
    if not path.is_absolute():
        return path
    try:
        return Path(os.path.relpath(path))
    except ValueError:  # another drive (Windows)
        return path


def _process(
    fileset: FileSet, read: SourceReader, options: Options, report: Report, progress: Progress
) -> None:
    index = ProjectIndex(fileset.root, fileset.project, read)
    targets = frozenset(fileset.targets)
    # Functions outside the files given are analyzed only when a call site needs one
    # (``CallSiteRewriter.analysis_of``): pre-commit passes a few files of a large project.
    all_function_files = index.maybe_function_files()
    function_files = [p for p in all_function_files if p in targets]

    def size(path: Path) -> int:  # the cost of a file is about proportional to its size
        return len(index.text(path))

    # Project-wide, like the index: whether any code may differentiate a surrogate twice.
    uses = scan_project(index, fileset.project)
    choice = form_choice(uses, options.exact_higher_order, fileset.root)

    with _mapper(index, fileset, options, len(function_files)) as mapper:
        found = [
            f
            for in_file in mapper.map(
                find_functions,
                choice,
                function_files,
                _counter(progress, ANALYZING, function_files),
                weight=size,
            )
            for f in in_file
        ]
        analyses = _analyses(found, report)
        context = TargetContext(
            analyses,
            CalleeNames.from_sources(
                set(index.maybe_function_names()), [index.text(p) for p in index.alias_files()]
            ),
            # Call sites are worth a pass: one of the files given defines a surrogate, or a
            # refused one whose uses are reported (FGI206), or a Function defined elsewhere may
            # be one (analyzed when a call needs it).
            rewritable=any(
                isinstance(r, Surrogate) or r.specializable or r.code.severity is not Severity.INFO
                for r in analyses.values()
            )
            or len(function_files) < len(all_function_files),
            targets=targets,
            options=options,
            styles=project_styles(fileset.root, fileset.targets),
            form=choice,
        )
        outcomes = mapper.map(
            notebooks.process_target,  # targets.process_target, and a notebook's magics
            context,
            fileset.targets,
            _counter(progress, CHECKING, fileset.targets),
            weight=size,
            lost=lambda path, reason: TargetOutcome(
                internal_error=f"{path}: {reason}; the file is left unchanged"
            ),
        )
    class_refusals = [
        r for r in analyses.values() if isinstance(r, Diagnostic) and r.location.path in targets
    ]
    report.files_scanned = len(fileset.targets)
    remote = _merge(fileset.targets, outcomes, analyses, report)
    _report_functions_left(analyses, class_refusals, targets, report)
    rewritten = [s for r in report.results for s in r.call_sites]
    if options.verify is not VerifyLevel.NONE or options.plot is not None:
        progress(VERIFYING, 0, len({s.surrogate for s in rewritten}))
        finish.verify(index, context, report, remote)
    _report_uses_left(rewritten, analyses, report, fileset.root)
    finish.add_remote_functions(index, report, remote, context.styles)
    finish.state_warnings(analyses, report)
    report.diagnostics.extend(finish.form_notes(report, analyses, uses, choice, fileset.root))
    if options.remove_unused:
        finish.remove_unused(index, fileset, analyses, report)
    _restore_elided(report, fileset.project)  # a big module's statements read without
    notebooks.write_back(index, report)  # module text -> the notebooks' bytes
    if options.verify_modules:  # opt-in: imports the rewritten files (verify/module_check.py)
        checks, problems = verify_modules(report.results, options.verify_timeout)
        report.module_checks.extend(checks)
        report.diagnostics.extend(problems)
    _list_functions(found, analyses, targets, report)


def _restore_elided(report: Report, project: tuple[Path, ...]) -> None:
    """Put back the statements a big file was read without (``elide``) into its results."""
    restored = []
    for result in report.results:
        try:
            before = elide.restore(result.path, result.before, project)
            after = elide.restore(result.path, result.after, project)
        except (OSError, ValueError) as exc:
            report.internal_errors.append(f"{result.path}: {exc}; the file is left unchanged")
            continue
        restored.append(replace(result, before=before, after=after))
    report.results = restored


def _analyses(found: Sequence[FoundFunction], report: Report) -> Analyses:
    """Each Function's analysis by qualname; a failed analysis is an internal error."""
    analyses: Analyses = {}
    for function in found:
        if function.analysis is None:  # the class is left alone
            report.internal_errors.append(function.error)
        else:
            analyses[function.qualname] = function.analysis
    return analyses


def _merge(
    paths: Sequence[Path], outcomes: Sequence[TargetOutcome], analyses: Analyses, report: Report
) -> Remote:
    """The targets' outcomes into the report, in path order; the generated functions they import
    from other targets are returned."""
    remote: Remote = {}
    for path, outcome in zip(paths, outcomes, strict=True):
        report.diagnostics.extend(outcome.diagnostics)
        if outcome.result is not None:
            report.results.append(outcome.result)
        if outcome.internal_error is not None:
            report.internal_errors.append(outcome.internal_error)
        if outcome.remote:
            remote[path] = list(outcome.remote)
        for key, analysis in outcome.specializations:
            analyses.setdefault(key, analysis)
    return remote


def _report_functions_left(
    analyses: Analyses,
    class_refusals: Sequence[Diagnostic],
    targets: frozenset[Path],
    report: Report,
) -> None:
    """The refusals of the Functions defined in the targets, and the surrogates no call site
    uses (FGI003). A refusal that call sites lifted with literal hyperparameters is reported
    there instead."""
    specialized = {s.surrogate.split("[", 1)[0] for r in report.results for s in r.call_sites}
    report.diagnostics.extend(
        d for d in class_refusals if not (d.specializable and d.subject in specialized)
    )
    report.diagnostics.extend(
        Diagnostic(
            codes.NoCallSite,
            s.location,
            f"{s.short_name}: no call site to rewrite in the files checked",
            subject=qualname,
        )
        for qualname, s in analyses.items()
        if isinstance(s, Surrogate)
        and qualname == s.class_qualname  # not a call-site specialization of a class
        and s.location.path in targets
        and qualname not in specialized
    )


def _report_uses_left(
    rewritten: Sequence[CallSite], analyses: Analyses, report: Report, root: Path
) -> None:
    """No silent misses: every use of a surrogate the run leaves has a line. The rewriters
    reported theirs (FGI206); here, the sites of surrogates verification refused get theirs,
    a use another line already explains (at the same place) none, and a surrogate with a use
    left is not one "with no call site" (FGI003)."""
    kept = {(s.surrogate, s.location) for r in report.results for s in r.call_sites}
    for site in rewritten:
        refusal = analyses.get(site.surrogate)
        if (site.surrogate, site.location) in kept or not isinstance(refusal, Diagnostic):
            continue
        report.diagnostics.append(
            Diagnostic(
                codes.SurrogateUseLeft,
                site.location,
                f"use of {refusal.message.split(':', 1)[0]} left unchanged: its rewrite is "
                f"refused ({refusal.code.code} in {shown_path(refusal.location.path, root)})",
                subject=site.surrogate,
            )
        )
    said = {d.location for d in report.diagnostics if d.code is not codes.SurrogateUseLeft}
    left = {d.subject for d in report.diagnostics if d.code is codes.SurrogateUseLeft}
    report.diagnostics[:] = [
        d
        for d in report.diagnostics
        if not (d.code is codes.SurrogateUseLeft and d.location in said)
        and not (d.code is codes.NoCallSite and d.subject in left)
    ]


def _list_functions(
    found: Sequence[FoundFunction], analyses: Analyses, targets: frozenset[Path], report: Report
) -> None:
    """The Functions of the files given, and those elsewhere that their call sites use."""
    used = {site.surrogate for result in report.results for site in result.call_sites}
    report.surrogates_found = len(
        {
            q
            for q, s in analyses.items()
            if isinstance(s, Surrogate) and s.location.path in targets and q == s.class_qualname
        }
        | used
    )
    report.functions.extend(
        finish.function_record(f, analyses[f.qualname]) for f in found if f.qualname in analyses
    )
    listed = {f.qualname for f in found}
    for qualname in sorted(used - listed):  # Functions outside the files given, used by them
        used_analysis = analyses.get(qualname)
        if isinstance(used_analysis, Surrogate):
            function = FoundFunction(
                qualname, used_analysis.short_name, used_analysis.location, used_analysis
            )
            report.functions.append(finish.function_record(function, used_analysis))


@contextmanager
def _mapper(
    index: ProjectIndex, fileset: FileSet, options: Options, function_files: int
) -> Iterator[parallel.Mapper]:
    """Worker processes for a large run with ``jobs`` > 1, else this process (workers read the
    stdin source through the index's reader, as this process does)."""
    jobs = min(options.jobs, parallel.MAX_JOBS)
    if jobs <= 1 or not parallel.worth_workers(len(fileset.targets), function_files):
        yield parallel.InProcess(index)
        return
    try:
        workers = parallel.Workers(jobs, fileset.root, fileset.project, index.read)
    except (OSError, ImportError, NotImplementedError):  # no process pools here (as black)
        yield parallel.InProcess(index)
        return
    try:
        yield workers
    finally:  # after Ctrl-C or an error, queued files are not waited for
        workers.stop()


def _counter(progress: Progress, stage: str, items: Sequence[object]) -> Callable[[int], None]:
    done = 0
    progress(stage, done, len(items))

    def advance(count: int) -> None:
        nonlocal done
        done += count
        progress(stage, done, len(items))

    return advance


def _relabel(report: Report, shown: Callable[[Path], Path]) -> None:
    """Every path of the report (after the writes) as the user is shown it."""

    def move(location: Location) -> Location:
        return replace(location, path=shown(location.path))

    def error(text: str) -> str:
        head, colon, rest = text.partition(": ")
        return f"{shown(Path(head))}{colon}{rest}" if colon and Path(head).is_absolute() else text

    report.diagnostics[:] = [replace(d, location=move(d.location)) for d in report.diagnostics]
    report.results[:] = [
        replace(
            r,
            path=shown(r.path),
            call_sites=tuple(replace(s, location=move(s.location)) for s in r.call_sites),
        )
        for r in report.results
    ]
    report.functions[:] = [replace(f, location=move(f.location)) for f in report.functions]
    report.verifications[:] = [
        replace(v, paths=tuple(map(shown, v.paths))) for v in report.verifications
    ]
    report.module_checks[:] = [replace(c, path=shown(c.path)) for c in report.module_checks]
    report.internal_errors[:] = [error(e) for e in report.internal_errors]
