"""One run over a set of paths: discover → index → analyze → rewrite → report (→ write).

Nothing here imports torch or executes the code it reads. A failure in one file (unreadable,
unparsable, unwritable, or an internal error while rewriting it) is reported against that file and
the others are still processed; a file is only ever replaced whole (``files.write_atomic``).
The per-file work (finding and analyzing Functions, checking and rewriting targets) runs in
this process or, for a large run with ``jobs`` > 1, in worker processes (parallel.py) with the
same result; everything that needs the whole project's results (verification, generated
functions placed in other modules, ``--remove-unused``, writing) runs here, afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import libcst as cst

from fgi_rewrite.analysis.analyze import analyze, specialization_key
from fgi_rewrite.core import codes, symbolic
from fgi_rewrite.core.ir import OUTPUT
from fgi_rewrite.core.model import Diagnostic, Location, RunMode, Style, Surrogate, VerifyLevel
from fgi_rewrite.core.results import FileResult, FunctionRecord, FunctionVerdict
from fgi_rewrite.pipeline import parallel
from fgi_rewrite.pipeline.report import Report
from fgi_rewrite.project.discover import FileSet, Filters, discover
from fgi_rewrite.project.files import describe_unreadable, write_checked
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.prefilter import CalleeNames
from fgi_rewrite.project.source_module import ClassInfo, ModuleInfo, SourceError, SourceReader
from fgi_rewrite.rewrite import cleanup
from fgi_rewrite.rewrite.call_sites import rewrite_module
from fgi_rewrite.rewrite.module_edits import add_functions, ensure_from_import, ensure_imports
from fgi_rewrite.verify.module_check import verify_modules
from fgi_rewrite.verify.stage import verify_rewrites

STDIN = "-"


@dataclass(frozen=True)
class Options:
    style: Style = Style.INLINE
    check: bool = False
    diff: bool = False
    exclude: str | None = None  # regex replacing discover.DEFAULT_EXCLUDE
    extend_exclude: str | None = None
    force_exclude: str | None = None
    gitignore: bool = True
    # Source read from standard input (``-``): rewritten in memory, never written to disk.
    stdin: bytes | None = None
    stdin_filename: str | None = None  # its name, for the project index and messages
    # Verification (verify/stage.py). The API default is none; the CLI's is script. A surrogate
    # failing the gradient check is never rewritten.
    verify: VerifyLevel = VerifyLevel.NONE
    require_verify: bool = False  # an unverified rewrite is refused
    allow_unscriptable: bool = False  # write rewrites that fail TorchScript/compile/export
    verify_timeout: float | None = None  # seconds for the whole verification subprocess
    remove_unused: bool = False  # drop Functions, aliases and imports nothing uses any more
    # A directory for one PNG per verified surrogate (value and gradient, original vs FGI), drawn
    # by the verification child; it implies at least ``verify="grad"``.
    plot: Path | None = None
    # Opt-in checks that execute the user's code: import each rewritten file and script its
    # nn.Modules; take the original Function from its module when it cannot be isolated.
    verify_modules: bool = False
    verify_import_user_code: bool = False
    # Worker processes for a large run (parallel.py); results never depend on it. The API
    # default is one process; the CLI's is the number of CPUs.
    jobs: int = 1

    def __post_init__(self) -> None:
        # The Python API also takes the plain strings (``Options(style="function")``).
        object.__setattr__(self, "style", Style(self.style))
        object.__setattr__(self, "verify", VerifyLevel(self.verify))

    @property
    def mode(self) -> RunMode:
        return RunMode.from_flags(self.check, self.diff)


# ``progress(stage, done, total)``: ANALYZING (files that may define a Function), CHECKING (the
# files given), then VERIFYING (once, before the verification subprocess: total rewrites).
Progress = Callable[[str, int, int], None]
ANALYZING, CHECKING, VERIFYING = "analyzing", "checking", "verifying"


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


def stdin_display(options: Options) -> Path:
    """The path under which the stdin source appears in the report."""
    return Path(options.stdin_filename or STDIN)


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
    if fileset.targets:
        try:
            _process(fileset, SourceReader(overlay), options, report, progress or _no_progress)
        except Exception as exc:  # nothing is written after an internal error in the index
            report.internal_errors.append(f"{type(exc).__name__}: {exc}")
            report.results.clear()
    for real in overlay:
        _relabel(report, real, stdin_display(options))
    if not options.check and not options.diff:
        _write_results(report, skip={stdin_display(options)} if overlay else set())
    return report


def _process(
    fileset: FileSet, read: SourceReader, options: Options, report: Report, progress: Progress
) -> None:
    index = ProjectIndex(fileset.root, fileset.project, read)
    targets = set(fileset.targets)
    # Functions outside the files given are analyzed only when a call site needs one
    # (``CallSiteRewriter.analysis_of``): pre-commit passes a few files of a large project.
    all_function_files = index.maybe_function_files()
    function_files = [p for p in all_function_files if p in targets]

    def size(path: Path) -> int:  # the cost of a file is about proportional to its size
        return len(index.text(path))

    with _mapper(index, fileset, options, len(function_files)) as mapper:
        found = [
            f
            for in_file in mapper.map(
                find_functions,
                None,
                function_files,
                _counter(progress, ANALYZING, function_files),
                weight=size,
            )
            for f in in_file
        ]
        analyses: dict[str, Surrogate | Diagnostic] = {}
        for function in found:
            if function.analysis is None:  # the class is left alone; an internal error
                report.internal_errors.append(function.error)
            else:
                analyses[function.qualname] = function.analysis
        names = set(index.maybe_function_names())
        context = TargetContext(
            analyses,
            CalleeNames.from_sources(names, [index.text(p) for p in index.alias_files()]),
            # Some Function may be rewritten at all: one of the files given defines a surrogate,
            # or a Function defined elsewhere may be one (analyzed when a call needs it).
            rewritable=any(isinstance(r, Surrogate) or r.specializable for r in analyses.values())
            or len(function_files) < len(all_function_files),
            targets=frozenset(targets),
            options=options,
        )
        outcomes = mapper.map(
            process_target,
            context,
            fileset.targets,
            _counter(progress, CHECKING, fileset.targets),
            weight=size,
            lost=lambda path, reason: TargetOutcome(
                internal_error=f"{path}: {reason}; the file is left unchanged"
            ),
        )
    surrogates = {q: r for q, r in analyses.items() if isinstance(r, Surrogate)}
    class_refusals = [
        r for r in analyses.values() if isinstance(r, Diagnostic) and r.location.path in targets
    ]
    report.files_scanned = len(fileset.targets)
    remote: dict[Path, list[tuple[Surrogate, str]]] = {}
    for path, outcome in zip(fileset.targets, outcomes, strict=True):
        report.diagnostics.extend(outcome.diagnostics)
        if outcome.result is not None:
            report.results.append(outcome.result)
        if outcome.internal_error is not None:
            report.internal_errors.append(outcome.internal_error)
        if outcome.remote:
            remote[path] = list(outcome.remote)
        for key, analysis in outcome.specializations:
            analyses.setdefault(key, analysis)
    # A refusal that call sites lifted with literal hyperparameters is reported there instead.
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
        for qualname, s in surrogates.items()
        if qualname == s.class_qualname  # not a call-site specialization of a class
        and s.location.path in targets
        and qualname not in specialized
    )
    if options.verify is not VerifyLevel.NONE or options.plot is not None:
        progress(VERIFYING, 0, len({s.surrogate for r in report.results for s in r.call_sites}))
        _verify(index, analyses, report, options, context.names, targets, remote)
    _add_remote_functions(index, report, remote)
    if options.remove_unused:
        _remove_unused(index, fileset, analyses, report)
    if options.verify_modules:  # opt-in: imports the rewritten files (verify/module_check.py)
        checks, problems = verify_modules(report.results, options.verify_timeout)
        report.module_checks.extend(checks)
        report.diagnostics.extend(problems)
    used = {site.surrogate for result in report.results for site in result.call_sites}
    report.surrogates_found = len(
        {q for q, s in surrogates.items() if s.location.path in targets and q == s.class_qualname}
        | used
    )
    report.functions.extend(
        function_record(f, analyses[f.qualname]) for f in found if f.qualname in analyses
    )
    listed = {f.qualname for f in found}
    for qualname in sorted(used - listed):  # Functions outside the files given, used by them
        used_analysis = analyses.get(qualname)
        if isinstance(used_analysis, Surrogate):
            function = FoundFunction(
                qualname, used_analysis.short_name, used_analysis.location, used_analysis
            )
            report.functions.append(function_record(function, used_analysis))


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


# ---- per-file work (in this process, or in a worker: see parallel.py) ------------------------


@dataclass(frozen=True)
class FoundFunction:
    """A Function class and its analysis; picklable (no libcst tree of its module)."""

    qualname: str
    name: str
    location: Location
    analysis: Surrogate | Diagnostic | None  # None: the analysis failed (``error`` says how)
    error: str = ""


def find_functions(index: ProjectIndex, _context: None, path: Path) -> list[FoundFunction]:
    """The Function classes of one file, each analyzed."""
    found = []
    for info in index.function_classes_in(path):
        try:
            analysis = analyze(index, info)
        except Exception as exc:  # this class is left alone; the others go on
            error = f"{info.location}: analyzing {info.qualname}: {type(exc).__name__}: {exc}"
            found.append(FoundFunction(info.qualname, info.name, info.location, None, error))
            continue
        found.append(FoundFunction(info.qualname, info.name, info.location, analysis))
    return found


@dataclass(frozen=True)
class TargetContext:
    """What every target's rewrite needs from the analysis of the whole project."""

    analyses: dict[str, Surrogate | Diagnostic]  # grows by the specializations call sites need
    names: CalleeNames
    rewritable: bool  # some Function may be rewritten at all
    targets: frozenset[Path]
    options: Options


@dataclass(frozen=True)
class TargetOutcome:
    """What checking and rewriting one target gave; merged into the Report in target order."""

    result: FileResult | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    internal_error: str | None = None
    # Generated functions this file imports from their Function's module (``_rewrite_file``).
    remote: tuple[tuple[Surrogate, str], ...] = ()
    # Analyses specialized to this file's call-site literals (new keys of ``analyses``).
    specializations: tuple[tuple[str, Surrogate | Diagnostic], ...] = ()


def process_target(index: ProjectIndex, context: TargetContext, path: Path) -> TargetOutcome:
    """Check one target's syntax, and rewrite its call sites if it may have any."""
    text = index.text(path)
    names = context.names
    try:
        # Files that cannot hold a call site are only checked for syntax (cheaply, with ast).
        relevant = context.rewritable and names.mentioned_in(text)
        if not relevant or not index.has_candidate_call(path, names.for_module(text)):
            index.check_syntax(path)
            return TargetOutcome()
        module = index.module(path)
    except SourceError as exc:
        line, column, message = describe_unreadable(path, exc, index.read)
        diagnostic = Diagnostic(codes.UnreadableFile, Location(path, line, column), message)
        return TargetOutcome(diagnostics=(diagnostic,))
    except Exception as exc:  # this file is left as it is; the others go on
        return TargetOutcome(
            internal_error=f"{path}: checking: {type(exc).__name__}: {exc}; "
            "the file is left unchanged"
        )
    known = set(context.analyses)
    report, remote = Report(), dict[Path, list[tuple[Surrogate, str]]]()
    result: FileResult | None = None
    error = None
    try:
        result = _rewrite_file(
            index, module, context.analyses, report, context.options, names, context.targets, remote
        )
    except Exception as exc:  # this file is left as it is; the others go on
        error = f"{path}: rewriting: {type(exc).__name__}: {exc}; the file is left unchanged"
    return TargetOutcome(
        result,
        tuple(report.diagnostics),
        error,
        tuple(remote.get(path, ())) if result is not None else (),
        tuple((k, a) for k, a in context.analyses.items() if k not in known),
    )


def _verify(
    index: ProjectIndex,
    analyses: dict[str, Surrogate | Diagnostic],
    report: Report,
    options: Options,
    names: CalleeNames,
    targets: set[Path],
    remote: dict[Path, list[tuple[Surrogate, str]]],
) -> None:
    """Verify every surrogate about to be rewritten; files using one that is refused (a wrong
    gradient, or unscriptable, or unverified with --require-verify) are rewritten again without
    it, so its call sites are left unchanged (and ``analyses`` records the refusal)."""
    outcome = verify_rewrites(
        index,
        analyses,
        report.results,
        level=(
            options.verify if options.verify is not VerifyLevel.NONE else VerifyLevel.GRAD
        ),  # --plot needs grad
        require=options.require_verify,
        allow_unscriptable=options.allow_unscriptable,
        timeout=options.verify_timeout,
        plot=options.plot,
        import_user_code=options.verify_import_user_code,
    )
    report.verifications.extend(outcome.verifications)
    report.diagnostics.extend(outcome.diagnostics)
    if not outcome.rejected:
        return
    analyses.update(outcome.rejected)
    for i, result in enumerate(report.results):
        if any(site.surrogate in outcome.rejected for site in result.call_sites):
            module = index.module(result.path)
            report.results[i] = _rewrite_file(
                index, module, analyses, Report(), options, names, targets, remote
            )


def function_record(function: FoundFunction, result: Surrogate | Diagnostic) -> FunctionRecord:
    """What the report says about one Function: its extracted f and g, or why it was left."""
    qualname, location = function.qualname, function.location
    if isinstance(result, Diagnostic):
        verdict = (
            FunctionVerdict.NOT_SURROGATE
            if result.code.severity is codes.Severity.INFO
            else FunctionVerdict.REFUSED
        )
        return FunctionRecord(
            qualname, location, verdict, code=result.code.code, message=result.message
        )
    params = tuple(p.name for p in result.params)
    out = next(n for n in ("out", "_out", "__out", "_fgi_out") if n not in params)
    mapping = {OUTPUT: cst.Name(out)}
    grads = tuple(
        (param, None if grad is None else symbolic.code(symbolic.substitute(grad, mapping)))
        for param, grad in zip(params, result.grads, strict=False)
    )
    return FunctionRecord(
        qualname,
        location,
        FunctionVerdict.SURROGATE,
        params=params,
        f=symbolic.code(symbolic.substitute(result.value, mapping)),
        g=grads,
    )


def _relabel(report: Report, real: Path, shown: Path) -> None:
    def move(location: Location) -> Location:
        return replace(location, path=shown) if location.path == real else location

    report.diagnostics[:] = [replace(d, location=move(d.location)) for d in report.diagnostics]
    report.results[:] = [replace(r, path=shown) if r.path == real else r for r in report.results]
    report.functions[:] = [replace(f, location=move(f.location)) for f in report.functions]
    report.verifications[:] = [
        replace(v, paths=tuple(shown if p == real else p for p in v.paths))
        for v in report.verifications
    ]


def _rewrite_file(
    index: ProjectIndex,
    module: ModuleInfo,
    analyses: dict[str, Surrogate | Diagnostic],
    report: Report,
    options: Options,
    names: CalleeNames,
    targets: AbstractSet[Path],
    remote: dict[Path, list[tuple[Surrogate, str]]],
) -> FileResult:
    """Rewrite one module's call sites. Generated functions whose Function lives in another
    target module are recorded in ``remote`` (per calling file) and added there later."""
    before = module.tree.bytes

    def specialize(
        info: ClassInfo,
        constants: Mapping[str, cst.BaseExpression],
        closure: tuple[tuple[str, str], ...],
    ) -> Surrogate | Diagnostic:
        key = specialization_key(info.qualname, constants, closure)
        if key not in analyses:
            analyses[key] = analyze(index, info, constants, closure)
        return analyses[key]

    tree, rewriter = rewrite_module(
        index, module, analyses, options.style, lambda q: False, names, specialize
    )
    report.diagnostics.extend(rewriter.diagnostics)
    remote.pop(module.path, None)
    if not rewriter.call_sites:
        return FileResult(module.path, before, before)
    functions = []
    for qualname, name in rewriter.functions.items():
        surrogate = analyses[qualname]
        assert isinstance(surrogate, Surrogate)
        home = surrogate.location.path
        if home != module.path and home in targets:
            # Defined once, beside its Function, and imported here.
            remote.setdefault(module.path, []).append((surrogate, name))
            tree = ensure_from_import(tree, _import_from(index, module, home), name)
            continue
        anchor = surrogate.short_name if surrogate.location.path == module.path else ""
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


def _remove_unused(
    index: ProjectIndex,
    fileset: FileSet,
    analyses: Mapping[str, Surrogate | Diagnostic],
    report: Report,
) -> None:
    """Remove the rewritten Functions that nothing in the project names any more, then the
    imports the rewrite left unused (see rewrite/cleanup.py)."""

    def drop_stale_imports() -> None:
        for path, result in list(results.items()):
            after = cleanup.remove_unused_imports(result.before, result.after)
            results[path] = FileResult(path, result.before, after, result.call_sites)
            texts[path] = after.decode("utf-8", "replace")

    texts = {p: index.text(p) for p in fileset.project}
    results = {r.path: r for r in report.results}
    drop_stale_imports()  # first, so that an import of an alias does not keep it alive
    homes: dict[Path, set[str]] = {}
    for result in report.results:
        for site in result.call_sites:
            surrogate = analyses.get(site.surrogate)
            if isinstance(surrogate, Surrogate) and surrogate.qualname.count(".") >= 1:
                home = surrogate.location.path
                if home in fileset.targets and surrogate.class_qualname == (
                    f"{index.module(home).qualifier}.{surrogate.short_name}"
                ):
                    homes.setdefault(home, set()).add(surrogate.short_name)
    for home, classes in sorted(homes.items()):
        names = cleanup.removable_names(texts, home, classes)
        if not names:
            continue
        current = results[home].after if home in results else index.module(home).tree.bytes
        updated = cleanup.remove_definitions(current, names)
        texts[home] = updated.decode("utf-8", "replace")
        old = results.get(home)
        results[home] = FileResult(
            home, index.module(home).tree.bytes, updated, old.call_sites if old else ()
        )
    drop_stale_imports()  # then what the removed classes alone used (``Function``, ``math``)
    report.results = list(results.values())


def _import_from(index: ProjectIndex, module: ModuleInfo, home: Path) -> str:
    """How ``module`` imports from the module at ``home``: relatively within one package."""
    target = index.module(home)
    if module.package and target.package == module.package:
        return "." + target.name.rsplit(".", 1)[-1]
    return target.name


def _add_remote_functions(
    index: ProjectIndex, report: Report, remote: dict[Path, list[tuple[Surrogate, str]]]
) -> None:
    """Add each generated function to the module that defines its Function (once)."""
    wanted: dict[Path, dict[str, Surrogate]] = {}
    for requests in remote.values():
        for surrogate, name in requests:
            wanted.setdefault(surrogate.location.path, {})[name] = surrogate
    for home, functions in sorted(wanted.items()):
        existing = next((r for r in report.results if r.path == home), None)
        module = index.module(home)
        tree = cst.parse_module(existing.after) if existing else module.tree
        present = {s.name.value for s in tree.body if isinstance(s, cst.FunctionDef)}
        additions = [
            (s.short_name, s, name) for name, s in sorted(functions.items()) if name not in present
        ]
        tree = ensure_imports(add_functions(tree, additions), ["torch"])
        if any(s.needs_math for _, s, _ in additions):
            tree = ensure_imports(tree, ["math"])
        updated = FileResult(
            home, module.tree.bytes, tree.bytes, existing.call_sites if existing else ()
        )
        report.results = [r for r in report.results if r.path != home] + [updated]


def _write_results(report: Report, skip: set[Path]) -> None:
    """Write every changed file; one that cannot be written is reported and left as it was."""
    for result in report.changed:
        if result.path in skip:
            continue
        problem = write_checked(result)
        if problem is not None:
            report.results.remove(result)
            report.diagnostics.append(
                Diagnostic(codes.UnwritableFile, Location(result.path, 1, 1), problem)
            )
