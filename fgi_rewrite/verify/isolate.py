"""The isolated verification module of one surrogate, built as text (no user code is imported).

``build_chunks`` gives the statements that rebuild the original Function: its class (dedented if
nested), in-module base classes, the imports of torch/math/numpy/the standard library, module-level
helper functions and constants whose definitions call only pure functions (``pure.py``: never I/O
or loading while the module is built), and the same definitions of
the project modules it imports names from, each in a namespace of its own. ``fgi_chunks`` gives
the emitted code and the ``nn.Module`` wrappers the checks script. The hyperparameter values
(call sites, defaults, else documented samples, ints where the code needs ints) and the inputs
sampled in [0, 1] are chosen in ``hyper_samples``. ``child/checks`` executes the chunks one at a
time; see ``verify`` for the stage.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import libcst as cst

from fgi_rewrite.analysis import elementwise as ew
from fgi_rewrite.core import ir
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.model import Style, Surrogate
from fgi_rewrite.core.names import FreshNames
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.notebook import is_notebook
from fgi_rewrite.project.source_module import (
    ClassInfo,
    ModuleInfo,
    bound_names,
    dotted_name,
    exported_names,
    imported_module,
    public_names,
)
from fgi_rewrite.rewrite.emit import emit_function, emit_inline
from fgi_rewrite.verify.job import Chunk, HyperConfig, StateRead, UserImport
from fgi_rewrite.verify.pure import PURE_BUILTINS, impure_calls

CANDIDATE = "_fgi_verify_candidate"
WRAPPERS = {Style.INLINE: "_FgiVerifyInline", Style.FUNCTION: "_FgiVerifyFunction"}
ORIGINAL = "_FgiVerifyOriginal"
# Module roots whose imports are copied into the verification module (plus the standard library).
ALLOWED_ROOTS = frozenset({"torch", "math", "numpy", "typing_extensions"})


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


MAX_FOREIGN_DEPTH = 4  # project modules reached through imports of imports


def _definitions(
    index: ProjectIndex,
    module: ModuleInfo,
    namespace: str,
    seen: set[str],
    depth: int,
    keep_class: Callable[[cst.ClassDef], str] = lambda node: "",
) -> tuple[list[Chunk], bool]:
    """The isolatable top-level statements of ``module`` as chunks executed in ``namespace``
    ('' is the verification module itself): imports of torch/math/the standard library,
    constants built by pure calls, functions with pure decorators and defaults, the classes
    ``keep_class`` names a chunk kind for; and, for each name imported from another project
    module, that module's own definitions (their source, never an import) linked under the name.
    Returns the chunks and whether the module has ``from __future__ import annotations``."""
    chunks: list[Chunk] = []
    future = False

    def add(kind: str, text: str, what: str = "") -> None:
        chunks.append(Chunk(kind, text, what, namespace))

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
                        chunks += _foreign(
                            index, module, small, namespace, seen, depth + 1, keep_class
                        )
            elif all(isinstance(s, (cst.Assign, cst.AnnAssign)) for s in smalls) and not (
                impure_calls(module, stmt)
            ):
                add("constant", text)  # only pure calls: never I/O at definition (pure.py)
        elif isinstance(stmt, cst.FunctionDef):
            if not impure_calls(module, stmt):  # its decorators and defaults
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
    keep_class: Callable[[cst.ClassDef], str] = lambda node: "",
) -> list[Chunk]:
    """Chunks giving the names an import of project modules binds (``from pkg.steps import
    step``, ``import pkg.steps as steps``): each such module's definitions in a namespace of
    its own, then a link of the imported name (a module, or an attribute of one)."""
    if isinstance(small, cst.ImportFrom) and isinstance(small.names, cst.ImportStar):
        return _star(index, module, small, namespace, seen, depth)
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
    chunks: list[Chunk] = []
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
            inner, future = _definitions(index, found, found.name, seen, depth, keep_class)
            chunks += [replace(chunk, future=future) for chunk in inner]
        link = f"# {local} = {found.name}{'.' + attribute if attribute else ''} (source copied)\n"
        chunks.append(
            Chunk("link", link, namespace=namespace, source=found.name, names={local: attribute})
        )
    return chunks


def _star(
    index: ProjectIndex,
    module: ModuleInfo,
    small: cst.ImportFrom,
    namespace: str,
    seen: set[str],
    depth: int,
) -> list[Chunk]:
    """``from .base import *`` of a project module: its definitions copied as for a named
    import, then a link of every name the star import takes (``__all__``, else the public
    names; one the copy lacks stays unbound)."""
    found = index.module_named(imported_module(module, small), module.path)
    if found is None or found.path == module.path:
        return []
    chunks: list[Chunk] = []
    if found.name not in seen:
        seen.add(found.name)
        inner, future = _definitions(index, found, found.name, seen, depth)
        chunks += [replace(chunk, future=future) for chunk in inner]
    exported = exported_names(found)
    names = exported if exported is not None else public_names(found)
    link = f"# from {found.name} import * (source copied)\n"
    chunks.append(
        Chunk("link", link, namespace=namespace, source=found.name, names={n: n for n in names})
    )
    return chunks


def build_chunks(
    index: ProjectIndex, info: ClassInfo, closure: Sequence[tuple[str, str]] = ()
) -> tuple[tuple[Chunk, ...], bool]:
    """The statements of the isolated module, each executed on its own by the child; a class
    built in a factory gets the factory call's literal arguments as module constants."""
    module = index.module(info.path)
    mro = index.mro(info)
    for base in mro[1:]:
        if base.qualname != f"{index.module(base.path).qualifier}.{base.name}":
            raise NotIsolated(
                f"its base class {base.name} is not defined at module level of {base.module}"
            )
    # A base class of another project module is copied with that module's definitions, in
    # its namespace, when the Function's module imports it from there.
    for definition in mro:
        impure = impure_calls(index.module(definition.path), definition.node)
        if impure:  # a class body, decorator or default that would run them when defined
            what = "its class" if definition is info else f"its base class {definition.name}"
            raise NotIsolated(
                f"{what} calls {', '.join(sorted(set(impure)))} when it is defined, which "
                "verification does not run (only pure torch, numpy and math functions)"
            )
    bases = {id(b.node) for b in mro[1:]}
    top = info.qualname == f"{module.qualifier}.{info.name}"
    chunks = [Chunk("header", "import math\nimport torch\n")]

    def keep_class(node: cst.ClassDef) -> str:
        return "class" if node is info.node else "base" if id(node) in bases else ""

    found, future = _definitions(index, module, "", {module.name}, 0, keep_class)
    copied = {c.what for c in found if c.kind == "base"}
    for base in mro[1:]:
        if f"class {base.name}" not in copied:
            raise NotIsolated(
                f"its base class {base.name} is defined in {base.module}, which its module "
                "does not import it from"
            )
    chunks += found
    for name, value in closure:
        chunks.append(Chunk("constant", f"{name} = {value}\n", name))
    if not top:  # nested in a class or a function: the class alone, dedented
        node = info.node
        if any(dotted_name(d.decorator) == "staticmethod" for d in node.decorators):
            # ``@staticmethod class Inner`` in a class body: ``self.Inner``/``Outer.Inner``
            # give the class itself, which is what the module-level copy must be.
            kept = [d for d in node.decorators if dotted_name(d.decorator) != "staticmethod"]
            node = node.with_changes(decorators=kept)
        text = cst.Module(body=[], default_indent=module.tree.default_indent).code_for_node(node)
        chunks.append(Chunk("class", text, f"class {info.name}"))
    return tuple(chunks), future


def _hyper_type(values: Sequence[object]) -> str:
    kinds = {type(v) for v in values}
    if kinds == {bool}:
        return ": bool"
    if kinds <= {int, float} and float in kinds:
        return ": float"
    if kinds == {int}:
        return ": int"
    return ": str" if kinds == {str} else ""


def fgi_chunks(
    surrogate: Surrogate,
    forms: set[Style],
    configs: Sequence[HyperConfig],
    callables: Mapping[int, str] | None = None,
) -> tuple[tuple[Chunk, ...], dict[Style, str]]:
    """The emitted code, and ``nn.Module`` wrappers that TorchScript/compile/export can take;
    the original is called with ``callables`` (position -> name of a callable the call sites
    pass, which the rewrite inlined) among its arguments."""
    params = [p.name for p in surrogate.params]
    grads = set(surrogate.differentiable())
    # Typed as the first configuration passes them: the one the TorchScript check uses.
    tensors = set(configs[0].tensors) if configs else set()
    annotated = []
    for i, name in enumerate(params):
        tensor = i in grads or name in tensors
        kind = ": torch.Tensor" if tensor else _hyper_type([c.values[name] for c in configs])
        annotated.append(f"{name}{kind}")
    signature = f"def forward(self, {', '.join(annotated)}) -> torch.Tensor:"
    arguments = ", ".join(params)
    fresh = FreshNames([*params, "self", "torch", "math"])
    # Only the forms the run writes are emitted and checked (emitting costs about as much as
    # checking: the symbolic clean-up of libcst trees).
    wrappers = []
    if Style.INLINE in forms:
        emission = emit_inline(surrogate, [sym.name(p) for p in params], fresh, fresh("_fgi_out"))
        body = "\n".join(f"        {line}" for line in emission.statements)
        wrappers.append(
            f"class {WRAPPERS[Style.INLINE]}(torch.nn.Module):\n    {signature}\n{body}\n"
            f"        return {sym.code(emission.result)}\n"
        )
    if Style.FUNCTION in forms:
        wrappers.append(
            f"{emit_function(surrogate, CANDIDATE)}\n\n"
            f"class {WRAPPERS[Style.FUNCTION]}(torch.nn.Module):\n    {signature}\n"
            f"        return {CANDIDATE}({arguments})\n"
        )
    passed = list(params)
    for position, name in sorted((callables or {}).items()):
        passed.insert(position, name)
    original = (
        f"class {ORIGINAL}(torch.nn.Module):\n    {signature}\n"
        f"        return {surrogate.short_name}.apply({', '.join(passed)})\n"
    )
    # ``emitted``: kept when the original comes from the user's module instead.
    chunks = (
        Chunk("fgi", "import math\nimport torch\n", emitted=True),
        *(Chunk("fgi", text, emitted=True) for text in wrappers),
        Chunk("class", original, "the call of the original", emitted=True),
    )
    targets = {Style.INLINE: WRAPPERS[Style.INLINE], Style.FUNCTION: CANDIDATE}
    return chunks, {form: targets[form] for form in sorted(forms)}


def import_root(path: Path) -> Path:
    """The directory to put on ``sys.path`` so that ``path`` imports under the module name
    the index gives it (above its outermost ``__init__.py`` package)."""
    directory = path.parent
    while (directory / "__init__.py").is_file():
        directory = directory.parent
    return directory


def user_import(index: ProjectIndex, info: ClassInfo | None) -> UserImport | None:
    """How the child imports the Function from the user's module (``--verify-import-user-code``):
    the import root, the module name and the attribute path of the class; None for a class built
    inside a function, or in a notebook, which no import reaches."""
    if info is None or info.in_function or is_notebook(info.path):
        return None
    module = index.module(info.path)
    prefix = f"{module.qualifier}."
    if not info.qualname.startswith(prefix):
        return None
    return UserImport(
        root=str(import_root(info.path)),
        module=module.name,
        attribute=info.qualname[len(prefix) :],
    )


# ---- run-time state the rewrite reads ----------------------------------------------------------


@dataclass(frozen=True)
class StateReads:
    """How the verification module reads the run-time state a surrogate reads (``<M>.ALPHA``,
    ``<M>.cfg.alpha``: ``core/ir.py``), and how the child sets it to each checked value.

    ``surrogate``: f and g with the reads written for the verification module (bare globals of
    the Function's module, which the verification module rebuilds; a name linked to the copied
    namespace of another module). ``reads``: one per read, with its key in the configurations'
    values and the path the child assigns. ``eager_only``: why the TorchScript, compile and
    export checks are not run."""

    surrogate: Surrogate
    chunks: tuple[Chunk, ...]
    reads: tuple[StateRead, ...]
    initial: tuple[tuple[str, str], ...]  # key -> initial value as code ('' when unknown)
    eager_only: str = ""


def runtime_state(surrogate: Surrogate, home: str) -> StateReads:
    """The reads of ``surrogate`` as the verification module of its Function's module
    (qualifier ``home``) reads them."""
    if not surrogate.reads:
        return StateReads(surrogate, (), (), ())
    links: dict[str, str] = {}  # qualifier -> linked name

    def base(qualifier: str) -> cst.BaseExpression | None:
        if qualifier == home:
            return None
        if qualifier not in links:
            links[qualifier] = f"_fgi_state_{len(links)}"
        return cst.Name(links[qualifier])

    def rendered(expression: cst.BaseExpression) -> cst.BaseExpression:
        return ir.map_references(expression, lambda r: ir.rebase(r, base))

    reads, initial = [], []
    for code, value in surrogate.reads:
        reference = cst.parse_expression(code)
        qualifier = ir.reference_root(reference) or home
        local = rendered(reference)
        key = sym.code(local)
        namespace = "" if qualifier == home else qualifier.split("@", 1)[0]
        reads.append(StateRead(key, namespace, _steps(ir.rebase(reference, lambda _: None))))
        initial.append((key, value))
    chunks = tuple(
        Chunk(
            "link",
            f"# {name} = {qualifier.split('@', 1)[0]} (the module whose state is read)\n",
            source=qualifier.split("@", 1)[0],
            names={name: ""},
        )
        for qualifier, name in links.items()
    )
    verified = replace(
        surrogate,
        value=rendered(surrogate.value),
        grads=tuple(None if g is None else rendered(g) for g in surrogate.grads),
    )
    # TorchScript takes a global read through a module (``surrogate.ALPHA``) as the constant it
    # holds when scripting, rejects a bare one and anything read through an object (FGI113).
    eager_only = (
        "the rewrite reads run-time state (" + ", ".join(r.key for r in reads) + "), which "
        "TorchScript cannot follow: checked in eager mode only"
    )
    return StateReads(verified, chunks, tuple(reads), tuple(initial), eager_only)


def _steps(reference: cst.BaseExpression) -> tuple[tuple[str, object], ...]:
    """``cfg.alpha`` -> (("name", "cfg"), ("attr", "alpha")); ``SLOPES[0]`` -> (("name",
    "SLOPES"), ("item", 0))."""
    if isinstance(reference, cst.Name):
        return (("name", reference.value),)
    if isinstance(reference, cst.Attribute):
        return (*_steps(reference.value), ("attr", reference.attr.value))
    if isinstance(reference, cst.Subscript):
        index = reference.slice[0].slice
        key = sym.literal_value(index.value) if isinstance(index, cst.Index) else None
        return (*_steps(reference.value), ("item", key))
    return ()


def callable_chunks(
    index: ProjectIndex, surrogate: Surrogate
) -> tuple[tuple[Chunk, ...], dict[int, str]]:
    """The callables the call sites pass (``Surrogate.callables``), rebuilt in the verification
    module for the original to call: a lambda's source, a module-level function's definition
    under a private name. Their free names must be torch, math or builtins (the verification
    module has no other module's globals); else NotIsolated."""
    chunks: list[Chunk] = []
    names: dict[int, str] = {}
    for position, code in surrogate.callables:
        parts = ir.callable_parts(cst.parse_expression(code))
        if parts is None:
            raise NotIsolated(f"the callable {code} cannot be read")
        qualifier, target = parts
        name = f"_fgi_callable_{position}"
        if isinstance(target, cst.Lambda):
            node: cst.CSTNode = target
            text = f"{name} = {sym.code(target)}\n"
        else:
            module = index.module_by_qualifier(qualifier)
            function = module.functions.get(target) if module is not None else None
            if function is None:
                raise NotIsolated(f"the function {target} of {qualifier} was not found")
            node = function.with_changes(name=cst.Name(name), decorators=[])
            text = cst.Module(body=[]).code_for_node(node)
        free = _free_names(node) - {"torch", "math", *PURE_BUILTINS, *ew.BUILTINS}
        if free:
            raise NotIsolated(
                f"the callable a call site passes reads {', '.join(sorted(free))} of its module"
            )
        chunks.append(Chunk("helper", text, f"the callable {code}"))
        names[position] = name
    return tuple(chunks), names


def _free_names(node: cst.CSTNode) -> set[str]:
    """Names a lambda or function reads that it does not bind itself."""
    params = node.params if isinstance(node, (cst.Lambda, cst.FunctionDef)) else None
    own = set()
    if params is not None:
        own = {
            p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)
        }
    if isinstance(node, cst.FunctionDef):
        own |= bound_names(node.body) | {node.name.value}
    return sym.names_in(node) - own
