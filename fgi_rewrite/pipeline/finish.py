"""The project-wide work of a run, in this process, after the per-file work: verification (and
the rewrite of the files whose surrogates it refuses), the generated functions added beside their
Function in another file, ``--remove-unused``, what the report says of each Function, and the
writes.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping
from pathlib import Path

import libcst as cst

from fgi_rewrite.core import codes, ir, symbolic
from fgi_rewrite.core.ir import OUTPUT
from fgi_rewrite.core.model import (
    Diagnostic,
    Form,
    Location,
    RunMode,
    Surrogate,
    VerifyLevel,
)
from fgi_rewrite.core.results import FileResult, FunctionRecord, FunctionVerdict
from fgi_rewrite.pipeline.report import Report
from fgi_rewrite.pipeline.targets import FormChoice, FoundFunction, TargetContext, rewrite_file
from fgi_rewrite.project.discover import FileSet
from fgi_rewrite.project.files import write_checked
from fgi_rewrite.project.higher_order import HigherOrderUses
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.notebook import is_notebook
from fgi_rewrite.rewrite import cleanup, hygiene
from fgi_rewrite.rewrite.formatting import ProjectStyles
from fgi_rewrite.rewrite.module_edits import add_functions
from fgi_rewrite.rewrite.references import ModuleNames, taken_names
from fgi_rewrite.verify.stage import verify_rewrites


def verify(
    index: ProjectIndex,
    context: TargetContext,
    report: Report,
    remote: dict[Path, list[tuple[Surrogate, str]]],
) -> None:
    """Verify every surrogate about to be rewritten; files using one that is refused (a wrong
    gradient, or unscriptable, or unverified without --allow-unverified) are rewritten again
    without it, so its call sites are left unchanged (and ``analyses`` records the refusal).
    With --check or --diff an unverified rewrite is still shown (its verdict and FGI305 say it
    would not be written)."""
    options, analyses = context.options, context.analyses
    outcome = verify_rewrites(
        index,
        analyses,
        report.results,
        level=(
            options.verify if options.verify is not VerifyLevel.NONE else VerifyLevel.GRAD
        ),  # --plot needs grad
        # verify="none" with a plot (API): verified only to draw; unverified writes were asked for.
        allow_unverified=options.writes_unverified or options.verify is VerifyLevel.NONE,
        allow_unscriptable=options.allow_unscriptable,
        timeout=options.verify_timeout,
        plot=options.plot,
        import_user_code=options.verify_import_user_code,
    )
    report.verifications.extend(outcome.verifications)
    report.diagnostics.extend(outcome.diagnostics)
    rejected = {
        qualname: why
        for qualname, why in outcome.rejected.items()
        if options.mode is RunMode.WRITE or qualname not in outcome.unverified
    }
    if not rejected:
        return
    analyses.update(rejected)
    for i, result in enumerate(report.results):
        if any(site.surrogate in rejected for site in result.call_sites):
            # Its diagnostics were reported by the first rewrite.
            rewritten = rewrite_file(index, context, index.module(result.path))
            report.results[i] = rewritten.result
            remote.pop(result.path, None)
            if rewritten.remote:
                remote[result.path] = list(rewritten.remote)


def add_remote_functions(
    index: ProjectIndex,
    report: Report,
    remote: dict[Path, list[tuple[Surrogate, str]]],
    styles: ProjectStyles,
) -> None:
    """Add each generated function to the module that defines its Function (once), laid out
    with the module's black settings."""
    wanted: dict[Path, dict[str, Surrogate]] = {}
    for requests in remote.values():
        for surrogate, name in requests:
            wanted.setdefault(surrogate.location.path, {})[name] = surrogate
    for home, functions in sorted(wanted.items()):
        existing = next((r for r in report.results if r.path == home), None)
        module = index.module(home)
        tree = cst.parse_module(existing.after) if existing else module.tree
        present = {s.name.value for s in tree.body if isinstance(s, cst.FunctionDef)}
        names = ModuleNames(index, module, functools.partial(_taken, tree.code))
        additions = [
            (s.short_name, names.render(s), name)
            for name, s in sorted(functions.items())
            if name not in present
        ]
        layout = styles.for_file(home)
        tree = add_functions(tree, additions, layout)
        inserted = hygiene.Inserted(intents=hygiene.base_intents())
        for name, surrogate in functions.items():
            inserted.intents.update(names.intents(surrogate))
            inserted.intents[name] = hygiene.Intent("function", name)
        for statement in tree.body:
            if isinstance(statement, cst.FunctionDef) and statement.name.value in functions:
                inserted.add(statement, ())
                inserted.own.add(id(statement))
        before = ast.parse(existing.after) if existing else index.ast_tree(home)
        # The callers checked what cannot be aliased (targets.remote_problem).
        tree = hygiene.apply(tree, inserted, module.package, before, layout).tree
        updated = FileResult(
            home, module.tree.bytes, tree.bytes, existing.call_sites if existing else ()
        )
        report.results = [r for r in report.results if r.path != home] + [updated]


def form_notes(
    report: Report,
    analyses: Mapping[str, Surrogate | Diagnostic],
    uses: HigherOrderUses,
    choice: FormChoice,
    root: Path,
) -> list[Diagnostic]:
    """One note per rewritten surrogate emitted in the exact form: why (the first higher-order
    use found, FGI401) or that it was asked for (FGI402)."""
    if choice.form is Form.FAST:
        return []
    notes: dict[str, Diagnostic] = {}
    for qualname in sorted({s.surrogate for r in report.results for s in r.call_sites}):
        surrogate = analyses.get(qualname)
        if not isinstance(surrogate, Surrogate) or surrogate.class_qualname in notes:
            continue
        if uses:
            code: type[codes.Code] = codes.ExactFormForHigherOrder
            forward_mode = choice.form is Form.EXACT_FORWARD_MODE
            how = "uses forward-mode AD" if forward_mode else "may differentiate it twice"
            shown = uses.summary(root, uses.forward_mode if forward_mode else uses.uses)
            message = (
                f"{surrogate.short_name}: emitted in the exact form (the original's values, "
                f"gradients and second derivatives; a slower backward), since the project "
                f"{how}: {shown}"
            )
        else:
            code, message = codes.ExactFormRequested, (
                f"{surrogate.short_name}: emitted in the exact form (--exact-higher-order)"
            )
        notes[surrogate.class_qualname] = Diagnostic(
            code, surrogate.location, message, subject=surrogate.class_qualname
        )
    return list(notes.values())


def _taken(code: str) -> set[str]:
    return taken_names(ast.parse(code))


def remove_unused(
    index: ProjectIndex,
    fileset: FileSet,
    analyses: Mapping[str, Surrogate | Diagnostic],
    report: Report,
) -> None:
    """Remove the rewritten Functions that nothing in the project names any more, then the
    imports the rewrite left unused (see rewrite/cleanup.py)."""

    def drop_stale_imports() -> None:
        for path, result in list(results.items()):
            after = cleanup.remove_unused_imports(
                result.before, result.after, also_used=hidden.get(path, "")
            )
            results[path] = FileResult(path, result.before, after, result.call_sites)
            texts[path] = after.decode("utf-8", "replace")

    texts = {p: index.text(p) for p in fileset.project}
    # What a notebook's module does not show still names things: ``%timeit Fn.apply(x)``.
    hidden = {p: index.hidden_text(p) for p in fileset.project if is_notebook(p)}
    texts.update((p.with_name(p.name + "#hidden"), text) for p, text in hidden.items())
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


def state_warnings(analyses: Mapping[str, Surrogate | Diagnostic], report: Report) -> None:
    """One FGI113 per rewritten surrogate whose code reads run-time state (what TorchScript
    then does differs: ``core/codes.RuntimeStateRead``)."""
    rewritten = {site.surrogate for result in report.results for site in result.call_sites}
    for qualname in sorted(rewritten):
        surrogate = analyses.get(qualname)
        if not isinstance(surrogate, Surrogate) or not surrogate.reads:
            continue
        references = [cst.parse_expression(code) for code, _ in surrogate.reads]
        reads = ", ".join(symbolic.code(ir.display(r)) for r in references)
        # Only a global read through its module is taken as a constant by TorchScript.
        globals_only = all(
            isinstance(r, cst.Attribute) and ir.module_of(r.value) is not None for r in references
        )
        script = (
            "a module scripted with torch.jit.script reads the value it had when scripted"
            if globals_only
            else "torch.jit.script cannot compile these reads"
        )
        report.diagnostics.append(
            Diagnostic(
                codes.RuntimeStateRead,
                surrogate.location,
                f"{surrogate.short_name}: the rewrite reads {reads} at run time, as the original "
                f"does ({script}; the verification checks it in eager mode only)",
                subject=qualname,
            )
        )


def function_record(function: FoundFunction, result: Surrogate | Diagnostic) -> FunctionRecord:
    """What the report says about one Function: its extracted f and g, or why it was left."""
    qualname, location = function.qualname, function.location
    if isinstance(result, Diagnostic):
        if result.code is codes.SkippedFunction:
            verdict = FunctionVerdict.SKIPPED
        elif result.code.severity is codes.Severity.INFO:
            verdict = FunctionVerdict.NOT_SURROGATE
        else:
            verdict = FunctionVerdict.REFUSED
        return FunctionRecord(
            qualname, location, verdict, code=result.code.code, message=result.message
        )
    params = tuple(p.name for p in result.params)
    out = next(n for n in ("out", "_out", "__out", "_fgi_out") if n not in params)
    mapping = {OUTPUT: cst.Name(out)}
    grads = tuple(
        (
            param,
            None if grad is None else symbolic.code(ir.display(symbolic.substitute(grad, mapping))),
        )
        for param, grad in zip(params, result.grads, strict=False)
    )
    return FunctionRecord(
        qualname,
        location,
        FunctionVerdict.SURROGATE,
        params=params,
        f=symbolic.code(ir.display(symbolic.substitute(result.value, mapping))),
        g=grads,
    )


def write_results(report: Report, skip: set[Path]) -> None:
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
