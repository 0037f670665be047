"""The verification stage: prove each rewrite before anything is written.

For every surrogate a run is about to rewrite, an isolated verification module is built as text:
the original Function class (dedented if nested) with the ``torch``/``math``/standard-library
imports, module-level helper functions and simple constants of its module (never the user's other
modules), the emitted FGI code in each form the run uses (the ``--style function`` function, and
the inline statements inside an ``nn.Module``), and a module calling the original's ``apply``.

All cases go to ONE subprocess (``verify_child.py``, run with ``sys.executable`` or
``$FGI_REWRITE_VERIFY_PYTHON``, with a timeout); only that child imports torch. This module never
imports torch and never executes the user's code: it writes a job as JSON and parses the JSON
lines the child prints. See ``verify_child`` for the checks and tolerances.

Hyperparameters (forward inputs without a gradient) take the literal or module-constant value
each call site passes, else the forward's default, else each value of ``SAMPLES``; every verdict
says which was used. Levels: ``grad`` (values and gradients), ``script`` (grad + TorchScript
script/save/load), ``full`` (script + ``torch.compile(fullgraph=True)`` + ``torch.export``).

With ``plot`` (``--plot DIR``) the child also draws one PNG per verified surrogate (value and
gradients of the original and of the rewrite, see ``verify_child.plot_case``), named by
``plot_name``; problems with the plots are ``FGI307`` warnings and never change a verdict.

Test hooks (documented in README): ``FGI_REWRITE_VERIFY_PYTHON`` names the child's interpreter,
``FGI_REWRITE_VERIFY_NO_TORCH=1`` makes the child behave as if torch were missing,
``FGI_REWRITE_VERIFY_TIMEOUT`` overrides the timeout in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import libcst as cst

from fgi_rewrite import codes
from fgi_rewrite import symbolic as sym
from fgi_rewrite.emit import emit_function, emit_inline, snake
from fgi_rewrite.index import ClassInfo, ModuleInfo, ProjectIndex, ValueRef, dotted_name
from fgi_rewrite.model import Diagnostic, Location, Surrogate

LEVELS = ("none", "grad", "script", "full")
SAMPLES = (1.0, 2.0, 5.0)  # hyperparameter values when neither the call site nor a default says
INT_SAMPLES = (1, 2, 5)  # the same for a hyperparameter the code uses as an integer
# Keyword arguments that take an int (``torch.round(x, decimals=k)``, ``x.roll(shifts=k)``).
INT_KEYWORDS = frozenset({"decimals", "shifts", "dims", "dim", "diagonal"})
# Calls that draw a 0/1 sample with their argument as the probability: its domain is [0, 1].
PROBABILITY_CALLS = frozenset({"bernoulli", "bernoulli_"})
MAX_CONFIGS = 4  # hyperparameter combinations checked per surrogate
CHILD = Path(__file__).with_name("verify_child.py")
MARKER = "@@fgi-verify@@ "
CANDIDATE = "_fgi_verify_candidate"
WRAPPERS = {"inline": "_FgiVerifyInline", "function": "_FgiVerifyFunction"}
ORIGINAL = "_FgiVerifyOriginal"
# Module roots whose imports are copied into the verification module (plus the standard library).
ALLOWED_ROOTS = frozenset({"torch", "math", "numpy", "typing_extensions"})
SAFE_BUILTINS = frozenset(
    {
        "float",
        "int",
        "bool",
        "complex",
        "tuple",
        "list",
        "dict",
        "set",
        "frozenset",
        "str",
        "range",
        "abs",
        "min",
        "max",
        "round",
        "pow",
    }
)
_BOOT = "import runpy, sys; p = sys.argv[1]; sys.argv = [p]; runpy.run_path(p, run_name='__main__')"


@dataclass(frozen=True)
class Verification:
    """What verification found for one surrogate (``checks``: name -> ``ok``/``fail``/``-``)."""

    surrogate: str  # qualname
    name: str
    paths: tuple[Path, ...]  # files where its call sites were to be rewritten
    checks: tuple[tuple[str, str], ...] = ()
    original: tuple[str, ...] = ()  # the original Function's own script/export results
    hyper: str = ""  # the hyperparameter values used, and where they came from
    status: str = "verified"  # verified, failed, unscriptable, unverified, isolation
    detail: str = ""
    written: bool = True
    seconds: float = 0.0
    plot: str = ""  # the PNG drawn with --plot (as the user named its directory)
    notes: tuple[str, ...] = ()  # what the comparison found but accepted (non-finite, shapes)

    def line(self) -> str:
        marks = {"ok": "✓", "fail": "✗", "-": "–"}
        parts = [f"{name} {marks.get(state, state)}" for name, state in self.checks]
        text = f"verify {self.name}: " + ("  ".join(parts) if parts else "not verified")
        if self.status in ("unverified", "isolation"):
            text += f" ({self.detail})"
        if self.original:
            text += f" (original: {'; '.join(self.original)})"
        if self.hyper:
            text += f" [{self.hyper}]"
        if not self.written:
            text += " -> left unchanged"
        return text


@dataclass
class Outcome:
    verifications: list[Verification] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    rejected: dict[str, Diagnostic] = field(default_factory=dict)  # qualname -> why
    torch_seconds: float = 0.0
    seconds: float = 0.0


# ---- building the isolated module ------------------------------------------------------------


class NotIsolated(Exception):
    """The class cannot be rebuilt without importing the user's other modules."""


def _root(dotted: str) -> str:
    return dotted.split(".")[0]


def _allowed_module(index: ProjectIndex, dotted: str) -> bool:
    root = _root(dotted)
    if index.module_named(root) is not None or index.module_named(dotted) is not None:
        return False  # one of the user's own modules
    return root in ALLOWED_ROOTS or root in getattr(sys, "stdlib_module_names", ())


def _import_ok(index: ProjectIndex, small: cst.BaseSmallStatement) -> bool:
    if isinstance(small, cst.Import):
        return all(_allowed_module(index, dotted_name(a.name) or "") for a in small.names)
    if isinstance(small, cst.ImportFrom):
        if small.relative or small.module is None:
            return False
        return _allowed_module(index, dotted_name(small.module) or "")
    return False


def _calls_allowed(module: ModuleInfo, node: cst.CSTNode) -> bool:
    """Only calls of torch/math/standard functions and plain builtins run at definition time."""
    ok = True

    class Visitor(cst.CSTVisitor):
        def visit_Lambda(self, n: cst.Lambda) -> bool:
            return False  # its body runs only when called

        def visit_Call(self, n: cst.Call) -> None:
            nonlocal ok
            full = dotted_name(n.func) or ""
            head = _root(full)
            target = module.imports.get(head, "")
            if not (head in SAFE_BUILTINS and head not in module.imports and "." not in full) and (
                _root(target) not in ALLOWED_ROOTS
            ):
                ok = False

        def visit_Await(self, n: cst.Await) -> None:
            nonlocal ok
            ok = False

    node.visit(Visitor())
    return ok


MAX_FOREIGN_DEPTH = 4  # project modules reached through imports of imports


def _definitions(
    index: ProjectIndex,
    module: ModuleInfo,
    namespace: str,
    seen: set[str],
    depth: int,
    keep_class: Callable[[cst.ClassDef], str] = lambda node: "",
) -> tuple[list[dict[str, Any]], bool]:
    """The isolatable top-level statements of ``module`` as chunks executed in ``namespace``
    ('' is the verification module itself): imports of torch/math/the standard library,
    constants built by allowed calls, functions with allowed decorators, the classes
    ``keep_class`` names a chunk kind for; and, for each name imported from another project
    module, that module's own definitions (their source, never an import) linked under the name.
    Returns the chunks and whether the module has ``from __future__ import annotations``."""
    chunks: list[dict[str, Any]] = []
    future = False

    def add(kind: str, text: str, what: str = "") -> None:
        chunks.append({"kind": kind, "what": what, "text": text, "namespace": namespace})

    for stmt in module.tree.body:
        text = module.tree.code_for_node(stmt)
        if isinstance(stmt, cst.SimpleStatementLine):
            smalls = list(stmt.body)
            if all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in smalls):
                if any(
                    isinstance(s, cst.ImportFrom)
                    and dotted_name(s.module or cst.Name("x")) == "__future__"
                    for s in smalls
                ):
                    future = future or "annotations" in text
                elif all(_import_ok(index, s) for s in smalls):
                    add("import", text)
                elif depth < MAX_FOREIGN_DEPTH:
                    for small in smalls:
                        chunks += _foreign(index, module, small, namespace, seen, depth + 1)
            elif all(isinstance(s, (cst.Assign, cst.AnnAssign)) for s in smalls) and all(
                _calls_allowed(module, s) for s in smalls
            ):
                add("constant", text)
        elif isinstance(stmt, cst.FunctionDef):
            if all(
                _root(module.imports.get(_root(dotted_name(d.decorator) or "?"), ""))
                in ALLOWED_ROOTS
                for d in stmt.decorators
            ):
                add("helper", text)
        elif isinstance(stmt, cst.ClassDef) and keep_class(stmt):
            add(keep_class(stmt), text, f"class {stmt.name.value}")
    return chunks, future


def _foreign(
    index: ProjectIndex,
    module: ModuleInfo,
    small: cst.BaseSmallStatement,
    namespace: str,
    seen: set[str],
    depth: int,
) -> list[dict[str, Any]]:
    """Chunks giving the names an import of project modules binds (``from pkg.steps import
    step``, ``import pkg.steps as steps``): each such module's definitions in a namespace of
    its own, then a link of the imported name (a module, or an attribute of one)."""
    locals_: list[str] = []
    if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
        locals_ = [
            (
                a.asname.name.value
                if a.asname is not None and isinstance(a.asname.name, cst.Name)
                else dotted_name(a.name) or ""
            )
            for a in small.names
        ]
    elif isinstance(small, cst.Import):  # only ``import a.b as c``: a bare ``a.b`` binds ``a``
        locals_ = [
            a.asname.name.value
            for a in small.names
            if a.asname is not None and isinstance(a.asname.name, cst.Name)
        ]
    chunks: list[dict[str, Any]] = []
    for local in locals_:
        target = module.imports.get(local, "")
        found = index.module_named(target, module.path)
        attribute = ""
        if found is None and "." in target:
            found = index.module_named(target.rsplit(".", 1)[0], module.path)
            attribute = target.rsplit(".", 1)[1]
        if found is None or found.path == module.path:
            continue  # not a project module: left out as before
        if found.name not in seen:
            seen.add(found.name)
            inner, future = _definitions(index, found, found.name, seen, depth)
            chunks += [{**chunk, "future": future} for chunk in inner]
        link = f"# {local} = {found.name}{'.' + attribute if attribute else ''} (source copied)\n"
        chunks.append(
            {
                "kind": "link",
                "what": "",
                "text": link,
                "namespace": namespace,
                "source": found.name,
                "names": {local: attribute},
            }
        )
    return chunks


def _chunks(
    index: ProjectIndex, info: ClassInfo, closure: Sequence[tuple[str, str]] = ()
) -> tuple[list[dict[str, Any]], bool]:
    """The statements of the isolated module, each executed on its own by the child; a class
    built in a factory gets the factory call's literal arguments as module constants."""
    module = index.module(info.path)
    mro = index.mro(info)
    for base in mro[1:]:
        if base.path != info.path or base.qualname != f"{module.qualifier}.{base.name}":
            raise NotIsolated(
                f"its base class {base.name} is defined in {base.module}"
                f"{'' if base.path != info.path else ' (not at module level)'}"
            )
    bases = {id(b.node) for b in mro[1:]}
    top = info.qualname == f"{module.qualifier}.{info.name}"
    chunks: list[dict[str, Any]] = [
        {"kind": "header", "what": "", "text": "import math\nimport torch\n"}
    ]

    def keep_class(node: cst.ClassDef) -> str:
        return "class" if node is info.node else "base" if id(node) in bases else ""

    found, future = _definitions(index, module, "", {module.name}, 0, keep_class)
    chunks += found
    for name, value in closure:
        chunks.append({"kind": "constant", "what": name, "text": f"{name} = {value}\n"})
    if not top:  # nested in a class or a function: the class alone, dedented
        node = info.node
        if any(dotted_name(d.decorator) == "staticmethod" for d in node.decorators):
            # ``@staticmethod class Inner`` in a class body: ``self.Inner``/``Outer.Inner``
            # give the class itself, which is what the module-level copy must be.
            kept = [d for d in node.decorators if dotted_name(d.decorator) != "staticmethod"]
            node = node.with_changes(decorators=kept)
        text = cst.Module(body=[], default_indent=module.tree.default_indent).code_for_node(node)
        chunks.append({"kind": "class", "what": f"class {info.name}", "text": text})
    return chunks, future


def _hyper_type(values: Sequence[object]) -> str:
    kinds = {type(v) for v in values}
    if kinds == {bool}:
        return ": bool"
    if kinds <= {int, float} and float in kinds:
        return ": float"
    if kinds == {int}:
        return ": int"
    return ": str" if kinds == {str} else ""


def _fgi_chunks(
    surrogate: Surrogate, forms: set[str], configs: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The emitted code, and ``nn.Module`` wrappers that TorchScript/compile/export can take."""
    params = [p.name for p in surrogate.params]
    grads = set(surrogate.differentiable())
    annotated = []
    for i, name in enumerate(params):
        kind = ": torch.Tensor" if i in grads else _hyper_type([c["values"][name] for c in configs])
        annotated.append(f"{name}{kind}")
    signature = f"def forward(self, {', '.join(annotated)}) -> torch.Tensor:"
    arguments = ", ".join(params)
    taken = {*params, "self", "torch", "math"}

    def fresh(base: str) -> str:
        candidate, n = base, 1
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        return candidate

    emission = emit_inline(surrogate, [sym.name(p) for p in params], fresh, fresh("_fgi_out"))
    body = "\n".join(f"        {line}" for line in emission.statements)
    inline = (
        f"class {WRAPPERS['inline']}(torch.nn.Module):\n    {signature}\n{body}\n"
        f"        return {sym.code(emission.result)}\n"
    )
    function = (
        f"class {WRAPPERS['function']}(torch.nn.Module):\n    {signature}\n"
        f"        return {CANDIDATE}({arguments})\n"
    )
    original = (
        f"class {ORIGINAL}(torch.nn.Module):\n    {signature}\n"
        f"        return {surrogate.short_name}.apply({arguments})\n"
    )
    chunks = [
        {"kind": "fgi", "what": "", "text": "import math\nimport torch\n"},
        {"kind": "fgi", "what": "", "text": emit_function(surrogate, CANDIDATE)},
        {"kind": "fgi", "what": "", "text": inline + "\n\n" + function},
        {"kind": "class", "what": "the call of the original", "text": original},
    ]
    targets = {"inline": WRAPPERS["inline"], "function": CANDIDATE}
    return chunks, {form: targets[form] for form in sorted(forms)}


# ---- hyperparameters -------------------------------------------------------------------------


def _call_nodes(module: ModuleInfo) -> dict[tuple[int, int], cst.Call]:
    found: dict[tuple[int, int], cst.Call] = {}
    for node, position in module.positions.items():
        start = getattr(position, "start", None)
        if isinstance(node, cst.Call) and start is not None:
            found.setdefault((start.line, start.column + 1), node)
    return found


def _bind(surrogate: Surrogate, call: cst.Call | None) -> list[tuple[cst.BaseExpression, str]]:
    """Argument expression per parameter and where it came from (call site or default)."""
    values: dict[str, tuple[cst.BaseExpression, str]] = {}
    names = [p.name for p in surrogate.params]
    for i, arg in enumerate(call.args if call is not None else ()):
        if arg.keyword is None and i < len(names) and not arg.star:
            values[names[i]] = (arg.value, "call site")
        elif arg.keyword is not None and arg.keyword.value in names:
            values[arg.keyword.value] = (arg.value, "call site")
    bound = []
    for p in surrogate.params:
        if p.name in values:
            bound.append(values[p.name])
        else:
            bound.append(
                (p.default, "default")
                if p.default is not None
                else (cst.Name("__fgi_unknown__"), "")
            )
    return bound


def _literal(index: ProjectIndex, module: ModuleInfo, node: cst.BaseExpression) -> object:
    value = sym.literal_value(node)
    if value is NotImplemented and isinstance(node, (cst.Name, cst.Attribute)):
        entity = index.resolve_expr(module, node)
        if isinstance(entity, ValueRef):
            value = sym.literal_value(entity.node)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return NotImplemented


def integer_params(forward: cst.FunctionDef | None) -> set[str]:
    """Parameters of ``forward`` the code needs as ints: annotated ``int``, or used as a shift or
    bitwise operand, a subscript index, an argument of ``range`` or an integer keyword argument
    (``decimals=k``)."""
    if forward is None:
        return set()
    names = {p.name.value for p in forward.params.params}
    found = {
        p.name.value
        for p in forward.params.params
        if p.annotation is not None and dotted_name(p.annotation.annotation) == "int"
    }

    def mark(node: cst.BaseExpression | None) -> None:
        if isinstance(node, cst.Name) and node.value in names:
            found.add(node.value)

    class Visitor(cst.CSTVisitor):
        def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
            integer = (cst.LeftShift, cst.RightShift, cst.BitAnd, cst.BitOr, cst.BitXor)
            if isinstance(node.operator, integer):
                mark(node.left)
                mark(node.right)

        def visit_SubscriptElement(self, node: cst.SubscriptElement) -> None:
            if isinstance(node.slice, cst.Index):
                mark(node.slice.value)

        def visit_Call(self, node: cst.Call) -> None:
            for arg in node.args:
                if dotted_name(node.func) == "range" or (
                    arg.keyword is not None and arg.keyword.value in INT_KEYWORDS
                ):
                    mark(arg.value)

    forward.body.visit(Visitor())
    return found


def probability_params(surrogate: Surrogate) -> set[str]:
    """Differentiable inputs the forward passes as a probability (``torch.bernoulli(p)``,
    ``p.bernoulli()``): outside [0, 1] the original raises, so they are sampled in [0, 1]."""
    names = {surrogate.params[i].name for i in surrogate.differentiable()}
    found: set[str] = set()

    class Visitor(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            callee = dotted_name(node.func) or ""
            if callee.rsplit(".", 1)[-1] not in PROBABILITY_CALLS:
                return
            if isinstance(node.func, cst.Attribute) and isinstance(node.func.value, cst.Name):
                if node.func.value.value in names:  # p.bernoulli()
                    found.add(node.func.value.value)
            if node.args and isinstance(node.args[0].value, cst.Name):
                if node.args[0].value.value in names:  # torch.bernoulli(p)
                    found.add(node.args[0].value.value)

    surrogate.value.visit(Visitor())
    return found


def _configs(
    index: ProjectIndex,
    surrogate: Surrogate,
    sites: Sequence[tuple[ModuleInfo, cst.Call | None]],
    integers: AbstractSet[str] = frozenset(),
) -> tuple[list[dict[str, Any]], str]:
    """Hyperparameter combinations to check, and a summary of where their values came from;
    ``integers`` names the hyperparameters that get integer samples."""
    hyper = [i for i, g in enumerate(surrogate.grads) if g is None]
    samples: dict[str, tuple[float, ...] | tuple[int, ...]] = {
        surrogate.params[i].name: INT_SAMPLES if surrogate.params[i].name in integers else SAMPLES
        for i in hyper
    }
    if not hyper:
        return [{"values": {}, "label": ""}], ""
    seen: list[tuple[tuple[object, str], ...]] = []
    for module, call in sites or [(index.module(surrogate.location.path), None)]:
        bound = _bind(surrogate, call)
        found: list[tuple[object, str]] = []
        for i in hyper:
            expr, source = bound[i]
            value = _literal(index, module, expr) if source else NotImplemented
            default = surrogate.params[i].default
            if value is NotImplemented and source == "call site" and default is not None:
                value, source = _literal(index, module, default), "default"
            found.append((value, source) if value is not NotImplemented else (None, "sample"))
        if tuple(found) not in seen:
            seen.append(tuple(found))
    # Known values first: MAX_CONFIGS cuts the sampled combinations, not the call sites'.
    seen.sort(key=lambda combo: sum(source == "sample" for _, source in combo))
    configs: list[dict[str, Any]] = []
    for combo in seen:
        sampled = any(s == "sample" for _, s in combo)
        for k in range(len(SAMPLES) if sampled else 1):
            values = {
                surrogate.params[i].name: (
                    samples[surrogate.params[i].name][k] if source == "sample" else value
                )
                for i, (value, source) in zip(hyper, combo, strict=True)
            }
            label = ", ".join(f"{name}={value!r}" for name, value in values.items())
            configs.append({"values": values, "label": label, "sampled": sampled})
    configs = configs[:MAX_CONFIGS]
    summary = []
    for j, i in enumerate(hyper):
        name = surrogate.params[i].name
        by_source: dict[str, list[str]] = {}
        for combo in seen:
            value, source = combo[j]
            shown = ", ".join(map(repr, samples[name])) if source == "sample" else repr(value)
            if shown not in by_source.setdefault(source, []):
                by_source[source].append(shown)
        summary.append("; ".join(f"{name}={'|'.join(v)} ({s})" for s, v in by_source.items()))
    return configs, ", ".join(summary)


# ---- the child process -----------------------------------------------------------------------


@dataclass
class ChildOutput:
    torch_ok: bool | None = None
    torch_error: str = ""
    torch_seconds: float = 0.0
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    problem: str = ""  # timeout or crash of the child itself
    plot_error: str = ""  # matplotlib could not be imported (--plot)


def default_timeout(level: str, cases: int) -> float:
    override = os.environ.get("FGI_REWRITE_VERIFY_TIMEOUT")
    if override:
        return float(override)
    return 60.0 + cases * (90.0 if level == "full" else 10.0)


def run_child(
    cases: Sequence[dict[str, Any]], level: str, timeout: float, python: str | None = None
) -> ChildOutput:
    """Run every case in one subprocess (torch is imported once) and collect its results."""
    python = python or os.environ.get("FGI_REWRITE_VERIFY_PYTHON") or sys.executable
    job = json.dumps({"level": level, "cases": list(cases)}).encode()
    output = ChildOutput()
    with tempfile.TemporaryDirectory(prefix="fgi-verify-") as cwd:
        try:
            process = subprocess.Popen(
                [python, "-c", _BOOT, str(CHILD)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                start_new_session=hasattr(os, "killpg"),
            )
        except OSError as exc:
            output.torch_ok, output.torch_error = False, f"cannot start {python}: {exc}"
            return output
        try:
            stdout, stderr = process.communicate(job, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            stdout, stderr = process.communicate()
            output.problem = f"verification timed out after {timeout:g} s"
    for line in stdout.decode("utf-8", errors="replace").splitlines():
        if not line.startswith(MARKER):
            continue
        message = json.loads(line[len(MARKER) :])
        if message.get("kind") == "torch":
            output.torch_ok = bool(message["ok"])
            output.torch_error = message.get("error", "")
            output.torch_seconds = float(message.get("seconds", 0.0))
        elif message.get("kind") == "case":
            output.results[message["id"]] = message
        elif message.get("kind") == "plot" and not message.get("ok"):
            output.plot_error = message.get("error", "") or "matplotlib is not importable"
    if output.torch_ok is None and not output.problem:
        tail = stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:]
        why = "; ".join(tail) or f"exit status {process.returncode}"
        output.problem = f"the verification process failed ({why})"
    return output


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)  # with its compile workers
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass


# ---- the stage ---------------------------------------------------------------------------------


def _uses(
    index: ProjectIndex, analyses: Mapping[str, Surrogate | Diagnostic], results: Sequence[Any]
) -> dict[str, dict[str, Any]]:
    """Per surrogate with call sites in ``results``: the files, the emitted forms (inline,
    function) and each call node with its module (for the hyperparameter values)."""
    used: dict[str, dict[str, Any]] = {}
    calls: dict[Path, dict[tuple[int, int], cst.Call]] = {}
    for result in results:
        for site in result.call_sites:
            if not isinstance(analyses.get(site.surrogate), Surrogate):
                continue
            entry = used.setdefault(site.surrogate, {"paths": [], "forms": set(), "sites": []})
            # A rewritten ``Fn.apply`` reference calls the generated function.
            entry["forms"].add("function" if site.style == "reference" else site.style)
            if result.path not in entry["paths"]:
                entry["paths"].append(result.path)
            module = index.module(result.path)
            if result.path not in calls:
                calls[result.path] = _call_nodes(module)
            _, line, column = (site.location.rsplit(":", 2) + ["0", "0"])[:3]
            key = (int(line), int(column)) if line.isdigit() and column.isdigit() else (0, 0)
            entry["sites"].append((module, calls[result.path].get(key)))
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
    results: Sequence[Any],  # FileResult: path and call_sites
    *,
    level: str = "script",
    require: bool = False,
    allow_unscriptable: bool = False,
    timeout: float | None = None,
    python: str | None = None,
    plot: Path | None = None,
) -> Outcome:
    """Verify every surrogate that has call sites in ``results``, in one subprocess.

    ``Outcome.rejected`` holds the surrogates that must not be rewritten (gradient failure;
    unscriptable unless ``allow_unscriptable``; unverified with ``require``), each with the
    refusal the caller puts in place of the Surrogate. With ``plot`` (a directory, created if
    needed) the child draws a PNG per verified surrogate; ``Verification.plot`` names it.
    """
    outcome = Outcome()
    plots: dict[str, str] = {}  # qualname -> PNG path as shown
    taken: set[str] = set()
    infos = {c.qualname: c for c in index.function_classes()}
    used = _uses(index, analyses, results)
    cases: list[dict[str, Any]] = []
    verdicts: dict[str, Verification] = {}
    for qualname, entry in used.items():
        surrogate = analyses[qualname]
        assert isinstance(surrogate, Surrogate)
        info = infos.get(surrogate.class_qualname)
        forward = (
            next(
                (c.methods()["forward"] for c in index.mro(info) if "forward" in c.methods()), None
            )
            if info is not None
            else None
        )
        configs, hyper = _configs(index, surrogate, entry["sites"], integer_params(forward))
        base = Verification(qualname, surrogate.short_name, tuple(entry["paths"]), hyper=hyper)
        try:
            if surrogate.class_qualname not in infos:
                raise NotIsolated("its class was not found")
            chunks, future = _chunks(index, infos[surrogate.class_qualname], surrogate.closure)
        except NotIsolated as exc:
            verdicts[qualname] = _isolation(base, str(exc), surrogate, require, outcome)
            continue
        fgi, forms = _fgi_chunks(surrogate, entry["forms"], configs)
        if plot is not None:
            plots[qualname] = str(plot / plot_name(surrogate, taken))
        cases.append(
            {
                "id": qualname,
                "class_name": surrogate.short_name,
                "chunks": chunks + fgi,
                "future_annotations": future,
                "forms": forms,
                "wrappers": WRAPPERS,
                "original_wrapper": ORIGINAL,
                "configs": configs,
                "params": [
                    {"name": p.name, "grad": g is not None}
                    for p, g in zip(surrogate.params, surrogate.grads, strict=True)
                ],
                "plot": str(Path(plots[qualname]).absolute()) if qualname in plots else None,
                "domain": "unit" if probability_params(surrogate) else "real",
                "hyper": hyper,
            }
        )
        verdicts[qualname] = base
    if plot is not None and cases and not _plot_directory(plot, used, outcome):
        for case in cases:
            case["plot"] = None
    if cases:
        child = run_child(cases, level, timeout or default_timeout(level, len(cases)), python)
        outcome.torch_seconds = child.torch_seconds
        outcome.seconds = sum(float(r.get("seconds", 0.0)) for r in child.results.values())
        if child.torch_ok is False:
            first = next(iter(used.values()))["paths"][0]
            outcome.diagnostics.append(
                Diagnostic(
                    codes.Unverified,
                    Location(first, 1, 1),
                    "torch is not importable by the verification interpreter "
                    f"({child.torch_error}); {len(cases)} rewrite(s) not verified "
                    "(install torch, or pass --verify none)",
                )
            )
        for case in cases:
            qualname = case["id"]
            surrogate = analyses[qualname]
            assert isinstance(surrogate, Surrogate)
            verdicts[qualname] = _judge(
                verdicts[qualname], surrogate, child, level, require, allow_unscriptable, outcome
            )
            if case["plot"]:
                verdicts[qualname] = _plotted(
                    verdicts[qualname], surrogate, plots[qualname], child, outcome
                )
        if any(case["plot"] for case in cases):
            _plot_problems(child, used, outcome)
    outcome.verifications = list(verdicts.values())
    return outcome


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
    base: Verification, reason: str, surrogate: Surrogate, require: bool, outcome: Outcome
) -> Verification:
    if require:
        _refuse(
            outcome,
            codes.VerificationRequired,
            surrogate,
            f"cannot verify in isolation ({reason}); left unchanged (--require-verify)",
        )
    else:
        _refuse(
            outcome,
            codes.CannotIsolate,
            surrogate,
            f"cannot verify in isolation: {reason}; rewritten unverified",
        )
    return _with(
        base,
        status="isolation",
        detail=f"cannot verify in isolation: {reason}",
        written=not require,
    )


def _with(verdict: Verification, **changes: Any) -> Verification:
    return replace(verdict, **changes)


def _judge(
    base: Verification,
    surrogate: Surrogate,
    child: ChildOutput,
    level: str,
    require: bool,
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
        if require:
            _refuse(
                outcome,
                codes.VerificationRequired,
                surrogate,
                f"not verified ({reason}); left unchanged (--require-verify)",
            )
        elif child.torch_ok is not False:
            _refuse(outcome, codes.Unverified, surrogate, f"not verified: {reason}")
        return _with(base, status="unverified", detail=reason, written=not require)
    if "isolation" in result:
        return _isolation(base, result["isolation"], surrogate, require, outcome)
    order = ["grad", "script", "compile", "export"][: {"grad": 1, "script": 2}.get(level, 4)]
    found: dict[str, dict[str, Any]] = result.get("checks", {})
    checks = tuple(
        (name, "-" if name not in found else "ok" if found[name]["ok"] else "fail")
        for name in order
    )
    originals = result.get("original", {})
    original = tuple(originals[k] for k in ("script", "export") if k in originals)
    hyper = base.hyper
    if result.get("skipped"):  # sample values outside the hyperparameter's domain
        hyper += "; not used: " + "; ".join(result["skipped"])
    verdict = _with(
        base,
        checks=checks,
        original=original,
        seconds=float(result.get("seconds", 0.0)),
        hyper=hyper,
        notes=tuple(result.get("notes", ())),
    )
    grad = found.get("grad", {"ok": False, "detail": "not run"})
    if not grad["ok"]:
        _refuse(
            outcome,
            codes.VerificationFailed,
            surrogate,
            f"the rewrite does not match the original: {grad['detail']}; left unchanged",
        )
        return _with(verdict, status="failed", detail=grad["detail"], written=False)
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
            return _with(verdict, status="unscriptable", detail=detail)
        _refuse(
            outcome,
            codes.NotScriptable,
            surrogate,
            f"the rewrite fails the {detail}; left unchanged (--allow-unscriptable writes "
            "it anyway)",
        )
        return _with(verdict, status="unscriptable", detail=detail, written=False)
    return verdict


def verifications_for(verifications: Sequence[Verification], path: Path) -> list[Verification]:
    """The verdicts of the surrogates whose call sites in ``path`` were (to be) rewritten."""
    return [v for v in verifications if path in v.paths]
