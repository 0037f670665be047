"""The per-file work of a run, in this process or in a worker (``parallel.py``): analyze the
Functions a file defines, then check one target and rewrite its call sites.

Each task is a module-level function ``task(index, context, item)`` returning a picklable value
that ``run`` merges into the Report in path order, so the result never depends on ``--jobs``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import libcst as cst

from fgi_rewrite.analysis import elementwise as ew
from fgi_rewrite.analysis.analyze import analyze, specialization_key
from fgi_rewrite.core import codes
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.model import Diagnostic, Form, Location, Surrogate
from fgi_rewrite.core.results import FileResult
from fgi_rewrite.pipeline.options import Options
from fgi_rewrite.project.files import describe_unreadable
from fgi_rewrite.project.higher_order import HigherOrderUses
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.notebook import is_notebook
from fgi_rewrite.project.prefilter import CalleeNames
from fgi_rewrite.project.skips import skipped_function
from fgi_rewrite.project.source_module import ClassInfo, ModuleInfo, SourceError
from fgi_rewrite.rewrite import hygiene
from fgi_rewrite.rewrite.call_sites import rewrite_module
from fgi_rewrite.rewrite.formatting import ProjectStyles
from fgi_rewrite.rewrite.module_edits import add_functions, ensure_from_import
from fgi_rewrite.rewrite.references import ModuleNames, Unnameable

# ---- analyzing the Functions of a file ---------------------------------------------------------


@dataclass(frozen=True)
class FoundFunction:
    """A Function class and its analysis; picklable (no libcst tree of its module)."""

    qualname: str
    name: str
    location: Location
    analysis: Surrogate | Diagnostic | None  # None: the analysis failed (``error`` says how)
    error: str = ""


@dataclass(frozen=True)
class FormChoice:
    """The form every surrogate of the run is emitted in (``Surrogate.form``), decided once
    from the higher-order scan and ``--exact-higher-order``; ``forward_mode_use``: the first
    forward-mode use found, as shown (FGI403)."""

    form: Form = Form.FAST
    forward_mode_use: str = ""


def form_choice(uses: HigherOrderUses, forced: bool, root: Path) -> FormChoice:
    """The exact form where the project differentiates twice or in forward mode (or when
    ``--exact-higher-order`` asks for it), else the fast one."""
    if uses.forward_mode:
        return FormChoice(Form.EXACT_FORWARD_MODE, uses.summary(root, uses.forward_mode))
    return FormChoice(Form.EXACT if uses or forced else Form.FAST)


def in_form(
    index: ProjectIndex, info: ClassInfo, analysis: Surrogate | Diagnostic, choice: FormChoice
) -> Surrogate | Diagnostic:
    """The analysis to emit in the run's form. Under forward-mode AD a Function that defines
    its own ``jvp`` gives that tangent, which the rewrite (tangent ``g``) cannot prove."""
    if not isinstance(analysis, Surrogate) or choice.form is Form.FAST:
        return analysis
    if choice.form is Form.EXACT_FORWARD_MODE and any(
        "jvp" in c.methods() for c in index.mro(info)
    ):
        return Diagnostic(
            codes.ForwardModeRule,
            info.location,
            f"{info.name}: defines its own jvp and the project uses forward-mode AD "
            f"({choice.forward_mode_use}); the rewrite's tangent is g, not that jvp's: "
            "left unchanged",
            subject=info.qualname,
        )
    return replace(analysis, form=choice.form)


def find_functions(index: ProjectIndex, choice: FormChoice, path: Path) -> list[FoundFunction]:
    """The Function classes of one file, each analyzed (in the run's form)."""
    found = []
    for info in index.function_classes_in(path):
        try:
            analysis = skipped_function(index, info) or in_form(
                index, info, analyze(index, info), choice
            )
        except Exception as exc:  # this class is left alone; the others go on
            error = f"{info.location}: analyzing {info.qualname}: {type(exc).__name__}: {exc}"
            found.append(FoundFunction(info.qualname, info.name, info.location, None, error))
            continue
        found.append(FoundFunction(info.qualname, info.name, info.location, analysis))
    return found


# ---- checking and rewriting a target -----------------------------------------------------------


@dataclass(frozen=True)
class TargetContext:
    """What every target's rewrite needs from the analysis of the whole project."""

    analyses: dict[str, Surrogate | Diagnostic]  # grows by the specializations call sites need
    names: CalleeNames
    rewritable: bool  # some Function may be rewritten at all
    targets: frozenset[Path]
    options: Options
    styles: ProjectStyles  # black's settings for the code the rewrite inserts (formatting.py)
    form: FormChoice = FormChoice()


@dataclass(frozen=True)
class Rewritten:
    """One module with its call sites rewritten."""

    result: FileResult
    diagnostics: tuple[Diagnostic, ...] = ()
    # Generated functions this file imports from their Function's module (another target),
    # where they are added once, after the per-file work.
    remote: tuple[tuple[Surrogate, str], ...] = ()


@dataclass(frozen=True)
class TargetOutcome:
    """What checking and rewriting one target gave; merged into the Report in target order."""

    result: FileResult | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    internal_error: str | None = None
    remote: tuple[tuple[Surrogate, str], ...] = ()  # see ``Rewritten.remote``
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
        line, column, message = (
            (1, 1, str(exc)) if is_notebook(path) else describe_unreadable(path, exc, index.read)
        )
        diagnostic = Diagnostic(codes.UnreadableFile, Location(path, line, column), message)
        return TargetOutcome(diagnostics=(diagnostic,))
    except Exception as exc:  # this file is left as it is; the others go on
        return TargetOutcome(
            internal_error=f"{path}: checking: {type(exc).__name__}: {exc}; "
            "the file is left unchanged"
        )
    known = set(context.analyses)
    try:
        rewritten = rewrite_file(index, context, module)
    except Exception as exc:  # this file is left as it is; the others go on
        error = f"{path}: rewriting: {type(exc).__name__}: {exc}; the file is left unchanged"
        return TargetOutcome(internal_error=error, specializations=_new(context, known))
    return TargetOutcome(
        rewritten.result,
        rewritten.diagnostics,
        remote=rewritten.remote,
        specializations=_new(context, known),
    )


def _new(context: TargetContext, known: set[str]) -> tuple[tuple[str, Surrogate | Diagnostic], ...]:
    return tuple((k, a) for k, a in context.analyses.items() if k not in known)


def rewrite_file(index: ProjectIndex, context: TargetContext, module: ModuleInfo) -> Rewritten:
    """Rewrite one module's call sites, with the generated functions and imports they need.
    A generated function whose Function lives in another target is imported from there (see
    ``Rewritten.remote``). Call sites whose inserted code cannot mean there what it means in
    the Function's module (``rewrite/hygiene.py``) are left unchanged and reported."""
    refused: dict[str, tuple[type[codes.Code], str]] = {}
    # The call sites are named by ``str(Location)`` in the rewriter's bookkeeping (hygiene.py).
    locations: dict[str, Location] = {}
    for _ in range(MAX_HYGIENE_ROUNDS):
        rewritten, problems = _rewrite_once(index, context, module, refused)
        locations.update((str(c.location), c.location) for c in rewritten.result.call_sites)
        if not problems:
            break
        refused.update(problems)
    else:
        rewritten = Rewritten(FileResult(module.path, module.tree.bytes, module.tree.bytes))
    return replace(
        rewritten,
        diagnostics=(
            *rewritten.diagnostics,
            *(
                Diagnostic(code, locations[site], f"{why}; left unchanged")
                for site, (code, why) in sorted(refused.items())
            ),
        ),
    )


MAX_HYGIENE_ROUNDS = 4  # rewrites of one file, each leaving more call sites unchanged


def _rewrite_once(
    index: ProjectIndex,
    context: TargetContext,
    module: ModuleInfo,
    refused: Mapping[str, tuple[type[codes.Code], str]],
) -> tuple[Rewritten, dict[str, tuple[type[codes.Code], str]]]:
    analyses = context.analyses
    before = module.tree.bytes

    def specialize(
        info: ClassInfo,
        constants: Mapping[str, cst.BaseExpression],
        closure: tuple[tuple[str, str], ...],
    ) -> Surrogate | Diagnostic:
        key = specialization_key(info.qualname, constants, closure)
        if key not in analyses:
            skipped = skipped_function(index, info)
            analyses[key] = skipped or in_form(
                index, info, analyze(index, info, constants, closure), context.form
            )
        return analyses[key]

    layout = context.styles.for_file(module.path)
    tree, rewriter = rewrite_module(
        index,
        module,
        analyses,
        context.options.style,
        context.names,
        specialize,
        layout,
        skip={site: why for site, (_, why) in refused.items()},
    )
    diagnostics = tuple(rewriter.diagnostics)
    if not rewriter.call_sites:
        return Rewritten(FileResult(module.path, before, before), diagnostics), {}
    functions = []
    remote = []
    problems: dict[str, tuple[type[codes.Code], str]] = {}
    inserted = rewriter.inserted
    for qualname, name in rewriter.functions.items():
        surrogate = analyses[qualname]
        assert isinstance(surrogate, Surrogate)
        sites = tuple(str(c.location) for c in rewriter.call_sites if c.surrogate == qualname)
        home = surrogate.location.path
        source = _import_from(index, module, home) if home != module.path else None
        if source is not None and home in context.targets:
            # Defined once, beside its Function, and imported here.
            problem = remote_problem(index, surrogate)
            if problem:
                problems.update((site, (codes.ShadowedName, problem)) for site in sites)
                continue
            remote.append((surrogate, name))
            tree = ensure_from_import(tree, source, name, layout)
            inserted.own.update(_import_ids(tree, name))
            continue
        try:
            rendered = rewriter.references.render(surrogate)
        except Unnameable as exc:
            why = f"{surrogate.short_name} reads run-time state this module cannot reach: {exc}"
            problems.update((site, (codes.StateNotReachable, why)) for site in sites)
            continue
        inserted.intents.update(rewriter.references.intents(surrogate))
        anchor = surrogate.short_name if surrogate.location.path == module.path else ""
        functions.append((anchor, rendered, name, sites))
    tree = add_functions(tree, [(anchor, s, name) for anchor, s, name, _ in functions], layout)
    for statement in tree.body:  # the generated functions serve the sites that call them
        for _, _, name, sites in functions:
            if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
                inserted.add(statement, sites)
                inserted.own.add(id(statement))
    original = _original_ast(index, module)
    checked = hygiene.apply(tree, inserted, module.package, original, layout)
    problems.update((site, (codes.ShadowedName, why)) for site, why in checked.refused.items())
    result = FileResult(module.path, before, checked.tree.bytes, tuple(rewriter.call_sites))
    return Rewritten(result, diagnostics, tuple(remote)), problems


def _original_ast(index: ProjectIndex, module: ModuleInfo) -> ast.Module | None:
    try:
        return index.ast_tree(module.path)
    except SourceError:
        return None


def remote_problem(index: ProjectIndex, surrogate: Surrogate) -> str:
    """Why the generated function of ``surrogate``, defined in its Function's module, could not
    read what the Function reads ('' if it can): a parameter named like a global it reads, or a
    builtin it uses that the module rebinds (see ``rewrite/hygiene.py``)."""
    home = index.module(surrogate.location.path)
    params = {p.name for p in surrogate.params}
    names = ModuleNames(index, home, lambda: ())
    for name, intent in names.intents(surrogate).items():
        if intent.kind == "global" and name in params:
            return f"'{name}' is both a parameter of the generated function and a global it reads"
    bound = set(home.assignments) | set(home.functions) | set(home.top_classes) | set(home.imports)
    used = set().union(*(sym.names_in(e) for e in (surrogate.value, *surrogate.grads) if e))
    for name in sorted(used & bound & (ew.BUILTINS | {"range"})):
        return f"'{name}' is rebound in {home.name}, not the builtin"
    return ""


def _import_ids(tree: cst.Module, name: str) -> set[int]:
    """The ids of the ``from m import name`` statements binding ``name`` at module level."""
    return {
        id(small)
        for statement in tree.body
        if isinstance(statement, cst.SimpleStatementLine)
        for small in statement.body
        if isinstance(small, cst.ImportFrom)
        and not isinstance(small.names, cst.ImportStar)
        and any(isinstance(a.name, cst.Name) and a.name.value == name for a in small.names)
    }


def _import_from(index: ProjectIndex, module: ModuleInfo, home: Path) -> str | None:
    """How ``module`` imports from the module at ``home``: relatively within one package; a
    notebook as it imports the Function itself (None when it does not import that module:
    the function is then generated in the notebook)."""
    target = index.module(home)
    if module.notebook is not None:
        for dotted in module.imports.values():
            parts = dotted.split(".")
            for cut in range(len(parts), 0, -1):
                found = index.module_named(".".join(parts[:cut]), module.path)
                if found is not None and found.path == home:
                    return ".".join(parts[:cut])
        return None
    if module.package and target.package == module.package:
        return "." + target.name.rsplit(".", 1)[-1]
    return target.name
