"""One run over a set of paths: discover → index → analyze → rewrite → report (→ write).

Nothing here imports torch or executes the code it reads. A failure in one file (unreadable,
unparsable, unwritable, or an internal error while rewriting it) is reported against that file and
the others are still processed; a file is only ever replaced whole (``write_atomic``).
"""

from __future__ import annotations

import ast
import codecs
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import libcst as cst

from fgi_rewrite import cleanup, codes, symbolic
from fgi_rewrite import index as index_module
from fgi_rewrite.analyze import analyze, specialization_key
from fgi_rewrite.discover import FileSet, Filters, discover
from fgi_rewrite.index import ClassInfo, ModuleInfo, ProjectIndex, SourceError
from fgi_rewrite.model import OUTPUT, Diagnostic, Location, Surrogate
from fgi_rewrite.module_check import verify_modules
from fgi_rewrite.prefilter import CalleeNames
from fgi_rewrite.report import (
    NOT_SURROGATE,
    REFUSED,
    SURROGATE,
    FileResult,
    FunctionRecord,
    Report,
)
from fgi_rewrite.rewrite import add_functions, ensure_from_import, ensure_imports, rewrite_module
from fgi_rewrite.verify import verify_rewrites

STDIN = "-"


@dataclass(frozen=True)
class Options:
    style: str = "inline"  # or "function"
    check: bool = False
    diff: bool = False
    exclude: str | None = None  # regex replacing discover.DEFAULT_EXCLUDE
    extend_exclude: str | None = None
    force_exclude: str | None = None
    gitignore: bool = True
    # Source read from standard input (``-``): rewritten in memory, never written to disk.
    stdin: bytes | None = None
    stdin_filename: str | None = None  # its name, for the project index and messages
    # Verification (verify.py): none, grad, script or full. The API default is none; the CLI's
    # is script. A surrogate failing the gradient check is never rewritten.
    verify: str = "none"
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


def stdin_display(options: Options) -> Path:
    """The path under which the stdin source appears in the report."""
    return Path(options.stdin_filename or STDIN)


def run(paths: Sequence[Path], options: Options) -> Report:
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
        with _source_overlay(overlay):
            try:
                _process(fileset, options, report)
            except Exception as exc:  # nothing is written after an internal error in the index
                report.internal_errors.append(f"{type(exc).__name__}: {exc}")
                report.results.clear()
    for real in overlay:
        _relabel(report, real, stdin_display(options))
    if not options.check and not options.diff:
        _write_results(report, skip={stdin_display(options)} if overlay else set())
    return report


def _process(fileset: FileSet, options: Options, report: Report) -> None:
    index = ProjectIndex(fileset.root, fileset.project)
    classes = index.function_classes()
    analyses: dict[str, Surrogate | Diagnostic] = {}
    for info in classes:
        try:
            analyses[info.qualname] = analyze(index, info)
        except Exception as exc:  # the class is left alone; the run reports an internal error
            report.internal_errors.append(
                f"{info.location}: analyzing {info.qualname}: {type(exc).__name__}: {exc}"
            )
    surrogates = {q: r for q, r in analyses.items() if isinstance(r, Surrogate)}
    rewritable = any(isinstance(r, Surrogate) or r.specializable for r in analyses.values())
    targets = set(fileset.targets)
    class_refusals = [
        r for r in analyses.values() if isinstance(r, Diagnostic) and r.location.path in targets
    ]
    names = CalleeNames.from_sources(
        {info.name for info in classes}, [index.text(p) for p in index.candidate_files()]
    )
    report.files_scanned = len(fileset.targets)
    remote: dict[Path, list[tuple[Surrogate, str]]] = {}
    for path in fileset.targets:
        text = index.text(path)
        relevant = rewritable and names.mentioned_in(text)
        try:
            # Files that cannot hold a call site are only checked for syntax (cheaply, with ast).
            if not relevant or not index.has_candidate_call(path, names.for_module(text)):
                index.check_syntax(path)
                continue
            module = index.module(path)
        except SourceError as exc:
            line, column, message = describe_unreadable(path, exc)
            report.diagnostics.append(
                Diagnostic(codes.UnreadableFile, Location(path, line, column), message)
            )
            continue
        try:
            report.results.append(
                _rewrite_file(index, module, analyses, report, options, names, targets, remote)
            )
        except Exception as exc:  # this file is left as it is; the others go on
            report.internal_errors.append(
                f"{path}: rewriting: {type(exc).__name__}: {exc}; the file is left unchanged"
            )
    # A refusal that call sites lifted with literal hyperparameters is reported there instead.
    specialized = {s.surrogate.split("[", 1)[0] for r in report.results for s in r.call_sites}
    report.diagnostics.extend(
        d for d in class_refusals if not (d.specializable and d.subject in specialized)
    )
    if options.verify != "none" or options.plot is not None:
        _verify(index, analyses, report, options, names, targets, remote)
    _add_remote_functions(index, report, remote)
    if options.remove_unused:
        _remove_unused(index, fileset, analyses, report)
    if options.verify_modules:  # opt-in: imports the rewritten files (module_check.py)
        checks, problems = verify_modules(report.results, options.verify_timeout)
        report.module_checks.extend(checks)
        report.diagnostics.extend(problems)
    used = {site.surrogate for result in report.results for site in result.call_sites}
    report.surrogates_found = len(
        {q for q, s in surrogates.items() if s.location.path in targets} | used
    )
    report.functions.extend(
        function_record(info, analyses[info.qualname])
        for info in classes
        if info.qualname in analyses and (info.path in targets or info.qualname in used)
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
        level=options.verify if options.verify != "none" else "grad",  # --plot needs grad
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


def function_record(info: ClassInfo, result: Surrogate | Diagnostic) -> FunctionRecord:
    """What the report says about one Function: its extracted f and g, or why it was left."""
    if isinstance(result, Diagnostic):
        verdict = NOT_SURROGATE if result.code.severity is codes.Severity.INFO else REFUSED
        return FunctionRecord(
            info.qualname, info.location, verdict, code=result.code.code, message=result.message
        )
    params = tuple(p.name for p in result.params)
    out = next(n for n in ("out", "_out", "__out", "_fgi_out") if n not in params)
    mapping = {OUTPUT: cst.Name(out)}
    grads = tuple(
        (param, None if grad is None else symbolic.code(symbolic.substitute(grad, mapping)))
        for param, grad in zip(params, result.grads, strict=False)
    )
    return FunctionRecord(
        info.qualname,
        info.location,
        SURROGATE,
        params=params,
        f=symbolic.code(symbolic.substitute(result.value, mapping)),
        g=grads,
    )


# ---- bad input --------------------------------------------------------------------------------

_PYTHON2_HINTS = (
    "Missing parentheses in call to",
    "multiple exception types must be parenthesized",
    "leading zeros in decimal integer literals",
    "invalid syntax. Perhaps you forgot a comma",
)


def describe_unreadable(path: Path, error: SourceError) -> tuple[int, int, str]:
    """Line, column and a precise message for a file libcst cannot parse, from Python's compiler.

    The source is only compiled to an AST, never executed.
    """
    try:
        data = index_module.read_source(path)
    except SourceError as exc:
        if not os.path.lexists(path):
            return 1, 1, "no such file (deleted during the run?)"
        return 1, 1, str(exc)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return 1, 1, "cannot decode: the file is UTF-16 encoded; Python source must be UTF-8"
    if b"\0" in data:
        return 1, data.index(b"\0") + 1, "cannot parse: the file contains a null byte (binary?)"
    try:
        ast.parse(data, filename=str(path))
    except SyntaxError as exc:
        message = exc.msg
        if message.startswith(("(unicode error)", "unknown encoding")):
            message = "cannot decode: " + message.removeprefix("(unicode error)").strip()
        else:
            if any(hint in message for hint in _PYTHON2_HINTS) or _looks_like_python2(data):
                message += " (this looks like Python 2 code, which is not supported)"
            message = f"cannot parse: {message}"
        return max(exc.lineno or 1, 1), max(exc.offset or 1, 1), message
    except (ValueError, UnicodeDecodeError, LookupError) as exc:
        return 1, 1, f"cannot decode: {exc}"
    return 1, 1, f"{error} (Python itself accepts the file; please report this)"


def _looks_like_python2(data: bytes) -> bool:
    statements = rb"^\s*((print|exec)\s+[\"'\w]|raise\s+[\w.]+\s*,)"
    return bool(re.search(statements, data, re.MULTILINE)) or b"<>" in data


@contextmanager
def _source_overlay(overlay: Mapping[Path, bytes]) -> Iterator[None]:
    """Serve ``overlay`` (stdin) instead of the disk to the index, for the duration of a run."""
    if not overlay:
        yield
        return
    original = index_module.read_source

    def read(path: Path) -> bytes:
        return overlay[path] if path in overlay else original(path)

    index_module.read_source = read
    try:
        yield
    finally:
        index_module.read_source = original


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
    targets: set[Path],
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
    imports the rewrite left unused (see cleanup.py)."""

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


def write_checked(result: FileResult) -> str | None:
    """Replace the file by ``result.after`` if it still holds what was read; else say why not."""
    path = result.path
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "the file was deleted during the run; it is not recreated"
    except OSError as exc:
        return f"cannot write: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return "no longer a regular file; not written"
    if not info.st_mode & 0o222 or not os.access(path, os.W_OK):
        return "the file is read-only; not rewritten (make it writable, or preview with --diff)"
    try:
        current = path.read_bytes()
    except OSError as exc:
        return f"cannot read it back before writing: {exc.strerror or exc}; not rewritten"
    if current != result.before and not _same_source(current, result.before):
        return "the file changed on disk during the run; not rewritten (run fgi-rewrite again)"
    try:
        write_atomic(path, result.after)
    except OSError as exc:
        return f"cannot write: {exc.strerror or exc}; the file is left unchanged"
    return None


def _same_source(current: bytes, before: bytes) -> bool:
    try:
        return index_module.parse_source(current).bytes == before
    except SourceError:
        return False


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, ``os.replace``; mode (and owner) are kept.

    An interrupted or failed write leaves the original file as it was and no temp file behind.
    """
    info = path.stat()
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".fgi-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, stat.S_IMODE(info.st_mode))
        if hasattr(os, "chown") and (info.st_uid, info.st_gid) != _owner(temp):
            try:
                os.chown(temp, info.st_uid, info.st_gid)
            except OSError:
                pass  # only root may give a file away; the content is what matters
        os.replace(temp, path)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise
    _fsync_directory(path.parent)


def _owner(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_uid, info.st_gid


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
