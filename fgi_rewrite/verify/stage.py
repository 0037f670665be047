"""The verification stage: prove each rewrite before anything is written.

For every surrogate a run is about to rewrite, an isolated verification module is built as text
(``isolate.py``): the original Function class (dedented if nested) with the ``torch``/``math``/
standard-library imports, module-level helper functions and simple constants of its module and of
the project modules it imports names from (copied, never imported), the emitted FGI code in each
form the run uses (the ``--style function`` function, and the inline statements inside an
``nn.Module``), and a module calling the original's ``apply``.

All cases go to ONE subprocess (``verify/child/checks.py``, run with ``sys.executable`` or
``$FGI_REWRITE_VERIFY_PYTHON``, with a timeout); only that child imports torch. This module never
imports torch and never executes the user's code: it writes a job as JSON and parses the JSON
lines the child prints. See ``child/checks.py`` for the checks and tolerances.

A rewrite that cannot be verified (torch missing, a timeout or crash of the child, a Function
that cannot be rebuilt in isolation or whose original does not run as its call sites use it) is
withheld (FGI305; ``Outcome.unverified``) unless ``allow_unverified`` (``--allow-unverified``:
FGI303/FGI304); when the child could not run at all, FGI309 says once why and how to get
verification.

Hyperparameters (forward inputs without a gradient) take the literal or module-constant value
each call site passes, else the forward's default, else each value of ``SAMPLES`` (``INT_SAMPLES``
for an integer); every verdict says which was used. Levels: ``grad`` (values and gradients),
``script`` (grad + TorchScript script/save/load), ``full`` (script +
``torch.compile(fullgraph=True)`` + ``torch.export``).

Opt-in and executing the user's code (README, "Security"): with ``import_user_code``
(``--verify-import-user-code``) a Function that cannot be rebuilt in isolation is taken from its
module, which the child imports; ``module_check.py`` (``--verify-modules``) imports every
rewritten file and scripts its ``nn.Module`` classes.

With ``plot`` (``--plot DIR``) the child also draws one PNG per verified surrogate (value and
gradients of the original and of the rewrite, see ``child/plot.plot_case``), named by
``plot_name``; problems with the plots are ``FGI307`` warnings and never change a verdict.

Test hooks (documented in README): ``FGI_REWRITE_VERIFY_PYTHON`` names the child's interpreter,
``FGI_REWRITE_VERIFY_NO_TORCH=1`` makes the child behave as if torch were missing,
``FGI_REWRITE_VERIFY_TIMEOUT`` overrides the timeout in seconds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import libcst as cst

from fgi_rewrite.core import codes
from fgi_rewrite.core.model import Diagnostic, Form, Location, Style, Surrogate, VerifyLevel
from fgi_rewrite.core.results import CallStyle, FileResult, Verification, VerificationStatus
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.rewrite.emit import snake
from fgi_rewrite.verify.hyper_kinds import saved_params
from fgi_rewrite.verify.hyper_samples import (
    SAMPLES,
    call_nodes,
    hyper_configs,
    integer_params,
    probability_params,
    with_state,
)
from fgi_rewrite.verify.isolate import (
    ORIGINAL,
    WRAPPERS,
    NotIsolated,
    build_chunks,
    callable_chunks,
    fgi_chunks,
    runtime_state,
    user_import,
)
from fgi_rewrite.verify.job import Case, Job
from fgi_rewrite.verify.process import ChildOutput, default_timeout, run_job

__all__ = ["SAMPLES", "Verification", "integer_params", "probability_params", "verify_rewrites"]


@dataclass
class Outcome:
    verifications: list[Verification] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    rejected: dict[str, Diagnostic] = field(default_factory=dict)  # qualname -> why
    # The rejected only because they could not be verified (FGI305): ``--check``/``--diff`` still
    # show them, marked unverified.
    unverified: set[str] = field(default_factory=set)
    torch_seconds: float = 0.0
    seconds: float = 0.0


# ---- the child process -----------------------------------------------------------------------


def run_child(
    cases: Sequence[Case], level: VerifyLevel, timeout: float, python: str | None = None
) -> ChildOutput:
    """Run every case in one subprocess (torch is imported once) and collect its results."""
    return run_job(Job(level, tuple(cases)), timeout, python)


# ---- the stage ---------------------------------------------------------------------------------


def _uses(
    index: ProjectIndex,
    analyses: Mapping[str, Surrogate | Diagnostic],
    results: Sequence[FileResult],
) -> dict[str, dict[str, Any]]:
    """Per surrogate with call sites in ``results``: the files, the emitted forms (inline,
    function) and each call node with its module (for the hyperparameter values)."""
    used: dict[str, dict[str, Any]] = {}
    calls: dict[Path, dict[Location, cst.Call]] = {}
    for result in results:
        for site in result.call_sites:
            if not isinstance(analyses.get(site.surrogate), Surrogate):
                continue
            entry = used.setdefault(site.surrogate, {"paths": [], "forms": set(), "sites": []})
            # A rewritten ``Fn.apply`` reference calls the generated function.
            entry["forms"].add(
                Style.FUNCTION if site.style is CallStyle.REFERENCE else Style(site.style)
            )
            if result.path not in entry["paths"]:
                entry["paths"].append(result.path)
            module = index.module(result.path)
            if result.path not in calls:
                calls[result.path] = call_nodes(module)
            entry["sites"].append((module, calls[result.path].get(site.location)))
    return used


def plot_name(surrogate: Surrogate, taken: set[str]) -> str:
    """``<snake_case_class_name>.png``; a specialization adds its constants (``_mode_1``), and a
    name already ``taken`` (the same class name in two modules) a number."""
    base = snake(surrogate.short_name)
    if "[" in surrogate.qualname:
        special = surrogate.qualname.split("[", 1)[1]
        slug = re.sub(r"[^0-9A-Za-z]+", "_", special).strip("_").lower()
        if len(slug) > 48:
            slug = slug[:40].rstrip("_") + "_" + hashlib.sha1(special.encode()).hexdigest()[:6]
        base = f"{base}_{slug}" if slug else base
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return f"{name}.png"


def verify_rewrites(
    index: ProjectIndex,
    analyses: Mapping[str, Surrogate | Diagnostic],
    results: Sequence[FileResult],
    *,
    level: VerifyLevel = VerifyLevel.SCRIPT,
    allow_unverified: bool = False,
    allow_unscriptable: bool = False,
    timeout: float | None = None,
    python: str | None = None,
    plot: Path | None = None,
    import_user_code: bool = False,
) -> Outcome:
    """Verify every surrogate that has call sites in ``results``, in one subprocess.

    ``Outcome.rejected`` holds the surrogates that must not be rewritten (gradient failure;
    unscriptable unless ``allow_unscriptable``; not verified unless ``allow_unverified``), each
    with the refusal the caller puts in place of the Surrogate; ``Outcome.unverified`` names
    those rejected only because they could not be verified. With ``plot`` (a directory, created if
    needed) the child draws a PNG per verified surrogate; ``Verification.plot`` names it. With
    ``import_user_code`` a Function that cannot be rebuilt in isolation is taken from its
    module, which the child imports (executing the user's code: opt-in, documented).
    """
    outcome = Outcome()
    plots: dict[str, str] = {}  # qualname -> PNG path as shown
    taken: set[str] = set()
    used = _uses(index, analyses, results)
    cases: list[Case] = []
    verdicts: dict[str, Verification] = {}
    for qualname, entry in used.items():
        surrogate = analyses[qualname]
        assert isinstance(surrogate, Surrogate)
        # Only the class of each used surrogate is looked up (in its own file): listing every
        # Function of the project would parse every file that defines one.
        info = next(
            (
                c
                for c in index.function_classes_in(surrogate.location.path)
                if c.qualname == surrogate.class_qualname
            ),
            None,
        )
        forward = (
            next(
                (c.methods()["forward"] for c in index.mro(info) if "forward" in c.methods()), None
            )
            if info is not None
            else None
        )
        configs, hyper = hyper_configs(
            index, surrogate, entry["sites"], integer_params(forward), saved_params(forward)
        )
        base = Verification(qualname, surrogate.short_name, tuple(entry["paths"]), hyper=hyper)
        importable = user_import(index, info) if import_user_code else None
        not_isolated = ""
        try:
            if info is None:
                raise NotIsolated("its class was not found")
            chunks, future = build_chunks(index, info, surrogate.closure)
        except NotIsolated as exc:
            if importable is None:
                verdicts[qualname] = _isolation(
                    base, str(exc), surrogate, allow_unverified, outcome
                )
                continue
            chunks, future, not_isolated = (), False, str(exc)  # the child imports the original
        state = runtime_state(surrogate, _qualifier(index, surrogate))
        configs, state_values = with_state(configs, state.initial)
        hyper = ", ".join(x for x in (hyper, state_values) if x)
        base = replace(base, hyper=hyper)
        try:
            passed, callables = callable_chunks(index, surrogate)
        except NotIsolated as exc:
            verdicts[qualname] = _isolation(base, str(exc), surrogate, allow_unverified, outcome)
            continue
        fgi, forms = fgi_chunks(state.surrogate, entry["forms"], configs, callables)
        if plot is not None:
            plots[qualname] = str(plot / plot_name(surrogate, taken))
        cases.append(
            Case(
                id=qualname,
                class_name=surrogate.short_name,
                chunks=(*chunks, *state.chunks, *passed, *fgi),
                future_annotations=future,
                forms=forms,
                wrappers=WRAPPERS,
                original_wrapper=ORIGINAL,
                configs=tuple(configs),
                params=tuple(
                    (p.name, g is not None)
                    for p, g in zip(surrogate.params, surrogate.grads, strict=True)
                ),
                hyper=hyper,
                domain="unit" if probability_params(surrogate) else "real",
                plot=str(Path(plots[qualname]).absolute()) if qualname in plots else None,
                user_import=importable,  # --verify-import-user-code: when isolation fails
                not_isolated=not_isolated,  # why the isolated module cannot be built
                second_order=surrogate.form is not Form.FAST,
                reads=state.reads,
                eager_only=state.eager_only,
                callables=tuple(sorted(callables.items())),
            )
        )
        verdicts[qualname] = base
    if plot is not None and cases and not _plot_directory(plot, used, outcome):
        cases = [replace(case, plot=None) for case in cases]
    if cases:
        child = run_child(cases, level, timeout or default_timeout(level, len(cases)), python)
        outcome.torch_seconds = child.torch_seconds
        outcome.seconds = sum(float(r.get("seconds", 0.0)) for r in child.results.values())
        missing = [case for case in cases if case.id not in child.results]
        if child.torch_ok is False or (child.problem and missing):
            first = next(iter(used.values()))["paths"][0]
            count = len(cases) if child.torch_ok is False else len(missing)
            outcome.diagnostics.append(
                Diagnostic(
                    codes.VerificationUnavailable,
                    Location(first, 1, 1),
                    unavailable_message(child, count, allow_unverified),
                )
            )
        for case in cases:
            qualname = case.id
            surrogate = analyses[qualname]
            assert isinstance(surrogate, Surrogate)
            verdicts[qualname] = _judge(
                verdicts[qualname],
                surrogate,
                child,
                level,
                allow_unverified,
                allow_unscriptable,
                outcome,
            )
            if case.plot:
                verdicts[qualname] = _plotted(
                    verdicts[qualname], surrogate, plots[qualname], child, outcome
                )
        if any(case.plot for case in cases):
            _plot_problems(child, used, outcome)
    outcome.verifications = list(verdicts.values())
    return outcome


def _qualifier(index: ProjectIndex, surrogate: Surrogate) -> str:
    """The qualifier of the Function's module (whose globals the verification module holds)."""
    return index.module(surrogate.location.path).qualifier


def _plot_directory(directory: Path, used: Mapping[str, dict[str, Any]], outcome: Outcome) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        first = next(iter(used.values()))["paths"][0]
        outcome.diagnostics.append(
            Diagnostic(
                codes.PlotNotDrawn,
                Location(first, 1, 1),
                f"--plot: cannot create {directory}: {exc.strerror or exc}; no plots drawn",
            )
        )
        return False
    return True


def _plotted(
    verdict: Verification, surrogate: Surrogate, shown: str, child: ChildOutput, outcome: Outcome
) -> Verification:
    result = child.results.get(surrogate.qualname) or {}
    if result.get("plot"):
        return _with(verdict, plot=shown)
    if result.get("plot_error"):
        _refuse(
            outcome,
            codes.PlotNotDrawn,
            surrogate,
            f"its plot could not be drawn: {result['plot_error']}",
        )
    return verdict


def _plot_problems(
    child: ChildOutput, used: Mapping[str, dict[str, Any]], outcome: Outcome
) -> None:
    """Why no plot at all was drawn, said once: no torch, or no matplotlib, in the child."""
    if child.torch_ok is False:
        message = "--plot: no plots drawn, since nothing was verified (torch is not importable)"
    elif child.plot_error:
        message = (
            "--plot needs matplotlib: pip install 'fgi-rewrite[plot]' "
            f"({child.plot_error}); no plots drawn"
        )
    else:
        return
    first = next(iter(used.values()))["paths"][0]
    outcome.diagnostics.append(Diagnostic(codes.PlotNotDrawn, Location(first, 1, 1), message))


def _refuse(outcome: Outcome, code: type[codes.Code], surrogate: Surrogate, message: str) -> None:
    diagnostic = Diagnostic(code, surrogate.location, f"{surrogate.short_name}: {message}")
    outcome.diagnostics.append(diagnostic)
    if code.severity is codes.Severity.REFUSAL:
        outcome.rejected[surrogate.qualname] = diagnostic


def _isolation(
    base: Verification, reason: str, surrogate: Surrogate, allow: bool, outcome: Outcome
) -> Verification:
    if allow:
        _refuse(
            outcome,
            codes.CannotIsolate,
            surrogate,
            f"cannot verify in isolation: {reason}; rewritten unverified (--allow-unverified)",
        )
    else:
        _withhold(outcome, surrogate, f"cannot verify in isolation ({reason})")
    return _with(
        base,
        status=VerificationStatus.ISOLATION,
        detail=f"cannot verify in isolation: {reason}",
        written=allow,
    )


def _withhold(outcome: Outcome, surrogate: Surrogate, reason: str) -> None:
    """An unverified rewrite, left unchanged by default (FGI305)."""
    _refuse(
        outcome,
        codes.VerificationRequired,
        surrogate,
        f"not verified: {reason}; left unchanged (--allow-unverified writes it)",
    )
    outcome.unverified.add(surrogate.qualname)


# How to get verification, said once when it cannot run (FGI309).
GET_VERIFICATION = (
    "get verification with pip install 'fgi-rewrite[verify]' (torch beside fgi-rewrite), or "
    "FGI_REWRITE_VERIFY_PYTHON=<the project's python, with torch>, or a pre-commit hook with "
    "'language: system'"
)


def unavailable_message(child: ChildOutput, count: int, allow: bool) -> str:
    """Why verification could not run, what became of the ``count`` rewrites, and what to do."""
    if child.torch_ok is False:
        why = f"torch is not importable by the verification interpreter ({child.torch_error})"
    else:
        why = child.problem or "the verification process stopped early"
        if "timed out" in why:
            why += " (FGI_REWRITE_VERIFY_TIMEOUT sets the limit in seconds)"
    if allow:
        return f"verification cannot run: {why}; {count} rewrite(s) written unverified " + (
            f"(--allow-unverified); {GET_VERIFICATION}"
        )
    return (
        f"verification cannot run: {why}; {count} rewrite(s) not written; {GET_VERIFICATION}; "
        "or pass --allow-unverified (or --verify none) to write unverified rewrites on purpose"
    )


def _with(verdict: Verification, **changes: Any) -> Verification:
    return replace(verdict, **changes)


def _judge(
    base: Verification,
    surrogate: Surrogate,
    child: ChildOutput,
    level: VerifyLevel,
    allow_unverified: bool,
    allow_unscriptable: bool,
    outcome: Outcome,
) -> Verification:
    result = child.results.get(surrogate.qualname)
    if child.torch_ok is False or result is None or "crash" in result:
        reason = (
            "torch is not importable"
            if child.torch_ok is False
            else child.problem or "the verification process stopped early"
        )
        if result is not None and "crash" in result:
            last = result["crash"].strip().splitlines()[-1]
            reason = f"internal error in the verification: {last}"
        if allow_unverified:
            _refuse(
                outcome,
                codes.Unverified,
                surrogate,
                f"not verified: {reason}; rewritten unverified (--allow-unverified)",
            )
        else:
            _withhold(outcome, surrogate, reason)
        return _with(
            base, status=VerificationStatus.UNVERIFIED, detail=reason, written=allow_unverified
        )
    if "isolation" in result:
        return _isolation(base, result["isolation"], surrogate, allow_unverified, outcome)
    order = ["grad", "script", "compile", "export"][
        : {VerifyLevel.GRAD: 1, VerifyLevel.SCRIPT: 2}.get(level, 4)
    ]
    found: dict[str, dict[str, Any]] = result.get("checks", {})
    checks = tuple(
        (name, "-" if name not in found else "ok" if found[name]["ok"] else "fail")
        for name in order
    )
    originals = result.get("original", {})
    original = tuple(originals[k] for k in ("script", "export") if k in originals)
    notes = tuple(result.get("notes", ()))
    if result.get("imported"):
        notes = (
            f"the original was imported from {result['imported']} (--verify-import-user-code), "
            f"since {result.get('not_isolated') or 'it cannot be rebuilt in isolation'}",
            *notes,
        )
    hyper = base.hyper
    if result.get("skipped"):  # sample values outside the hyperparameter's domain
        hyper += "; not used: " + "; ".join(result["skipped"])
    verdict = _with(
        base,
        checks=checks,
        original=original,
        seconds=float(result.get("seconds", 0.0)),
        hyper=hyper,
        notes=notes,
        imported=result.get("imported", ""),
    )
    grad = found.get("grad", {"ok": False, "detail": "not run"})
    if not grad["ok"]:
        _refuse(
            outcome,
            codes.VerificationFailed,
            surrogate,
            f"the rewrite does not match the original: {grad['detail']}; left unchanged",
        )
        return _with(
            verdict, status=VerificationStatus.FAILED, detail=grad["detail"], written=False
        )
    failed = [
        (name, found[name]["detail"])
        for name in order[1:]
        if name in found and not found[name]["ok"]
    ]
    if failed:
        detail = "; ".join(f"{name} check: {text}" for name, text in failed)
        if allow_unscriptable:
            _refuse(
                outcome,
                codes.UnscriptableWritten,
                surrogate,
                f"written although it fails the {detail} (--allow-unscriptable)",
            )
            return _with(verdict, status=VerificationStatus.UNSCRIPTABLE, detail=detail)
        _refuse(
            outcome,
            codes.NotScriptable,
            surrogate,
            f"the rewrite fails the {detail}; left unchanged (--allow-unscriptable writes "
            "it anyway)",
        )
        return _with(verdict, status=VerificationStatus.UNSCRIPTABLE, detail=detail, written=False)
    return verdict
