"""Run-time state reads where the code is inserted: each module marker (``core/ir.py``) becomes a
name that denotes that module in the calling module.

In the module that defines the state a read is the bare global (``ALPHA``, ``SLOPES[0]``).
Elsewhere it goes through a module-level name bound to the module by an import: one the calling
module already has (``import surrogate``, ``from pkg import surrogates as s``), else a new
``import pkg.surrogates as surrogates`` (``from . import surrogates`` within one package), under a
name nothing in the module uses. ``rewrite/hygiene.py`` then checks, with scope analysis, that
every such name means that module where the code lands.

A new import never creates an import cycle the program did not have. It is placed after the
module's other top-level imports, so when those already import the state's module (directly or
through others, the usual case: the caller imports the Function from there) nothing about the
order in which modules load changes. Otherwise it is added only when the state's module does not
import the caller (directly or through others) at module level; if it does, the call site is
left unchanged (``FGI205``), since the new import would make the two modules import each other.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import libcst as cst

from fgi_rewrite.core import ir
from fgi_rewrite.core.model import Surrogate
from fgi_rewrite.core.names import FreshNames
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import ModuleInfo, SourceError, module_name_for
from fgi_rewrite.rewrite.hygiene import Intent, module_intent

MAX_IMPORT_GRAPH = 2000  # modules visited when looking for an import path


class Unnameable(Exception):
    """A module whose state inserted code reads cannot be named where the code goes."""


@dataclass(frozen=True)
class Binding:
    """A module-level name that denotes a module in the calling module; ``statement`` is the
    import to add ('' when the module has it already); ``relative``: ``from . import x`` when
    the module is in the caller's package (how a private alias of it is imported)."""

    name: str
    module: str  # dotted name of the module it denotes
    statement: str = ""
    relative: str = ""

    def intent(self) -> Intent:
        return module_intent(self.module, self.statement, self.relative)


@dataclass
class ModuleNames:
    """How one module names the modules whose state the code inserted into it reads."""

    index: ProjectIndex
    module: ModuleInfo
    taken: Callable[[], Iterable[str]]  # the names a new one must differ from (asked once)
    bindings: dict[str, Binding] = field(default_factory=dict)  # by the state's qualifier
    _fresh: FreshNames | None = None

    def fresh(self, base: str) -> str:
        if self._fresh is None:
            self._fresh = FreshNames(self.taken())
        return self._fresh(base)

    def base(self, qualifier: str) -> cst.BaseExpression | None:
        """The expression for module ``qualifier`` here (None: its globals are bare names)."""
        if qualifier == self.module.qualifier:
            return None
        if qualifier not in self.bindings:
            self.bindings[qualifier] = self._bind(qualifier)
        return cst.Name(self.bindings[qualifier].name)

    def render(self, surrogate: Surrogate) -> Surrogate:
        """``surrogate`` with its reads of run-time state written as they read here; raises
        Unnameable."""
        if not surrogate.reads:
            return surrogate

        def rendered(expression: cst.BaseExpression) -> cst.BaseExpression:
            return ir.map_references(expression, lambda r: ir.rebase(r, self.base))

        return replace(
            surrogate,
            value=rendered(surrogate.value),
            grads=tuple(None if g is None else rendered(g) for g in surrogate.grads),
        )

    def intents(self, surrogate: Surrogate) -> dict[str, Intent]:
        """What each name the rendered reads of ``surrogate`` use must denote here."""
        found: dict[str, Intent] = {}
        for code, _ in surrogate.reads:
            reference = cst.parse_expression(code)
            qualifier = ir.reference_root(reference)
            if qualifier is None:
                continue
            if self.base(qualifier) is None:
                name = _first_attribute(reference)
                found[name] = Intent("global", name)
            else:
                binding = self.bindings[qualifier]
                found[binding.name] = binding.intent()
        return found

    def _bind(self, qualifier: str) -> Binding:
        target = self.index.module_by_qualifier(qualifier)
        if target is None:
            raise Unnameable(f"module {qualifier} cannot be found")
        if self.index.module_named(target.name, self.module.path) is not target:
            raise Unnameable(f"two modules of the project are named {target.name}")
        short = target.name.rsplit(".", 1)[-1]
        same_package = bool(target.package) and target.package == self.module.package
        relative = f"from . import {short}" if same_package else ""
        for local, dotted in sorted(self.module.imports.items()):
            if dotted == target.name and local not in self.module.assignments:
                return Binding(local, target.name, relative=relative)
        if self._new_cycle(target):
            raise Unnameable(
                f"reading {target.name}'s state needs an import of it here, and {target.name} "
                f"imports {self.module.name}: the two modules would import each other"
            )
        if self._package_rebinds(target, short):
            raise Unnameable(f"package {target.package} binds the name {short} to another value")
        local = self.fresh(short)
        if same_package:
            statement = relative + (f" as {local}" if local != short else "")
        elif local == target.name:
            statement = f"import {local}"
        else:
            statement = f"import {target.name} as {local}"
        return Binding(local, target.name, statement, relative)

    def _new_cycle(self, target: ModuleInfo) -> bool:
        """Whether importing ``target`` here creates an import cycle: ``target`` imports this
        module (through any chain) and this module does not already import ``target``."""
        here = self.module.path
        return reaches(self.index, target.path, here) and not reaches(self.index, here, target.path)

    def _package_rebinds(self, target: ModuleInfo, short: str) -> bool:
        if not target.package:
            return False
        package = self.index.module_named(target.package, target.path)
        if package is None or not package.is_package:
            return False
        bound = set(package.assignments) | set(package.functions) | set(package.top_classes)
        imported = package.imports.get(short)
        return short in bound or (imported is not None and imported != target.name)


def taken_names(tree: ast.Module) -> set[str]:
    """Every name the module binds or reads (a new module-level name must be none of them);
    module paths in imports and attribute fields are not names. From the stdlib AST (cheap)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _first_attribute(reference: cst.BaseExpression) -> str:
    while isinstance(reference, (cst.Attribute, cst.Subscript)):
        if isinstance(reference, cst.Attribute) and ir.module_of(reference.value) is not None:
            return reference.attr.value
        reference = reference.value
    return ""


# ---- the project's import graph (module level, stdlib AST) --------------------------------------


def reaches(index: ProjectIndex, source: Path, target: Path) -> bool:
    """Whether importing ``source`` imports ``target`` (through any chain of module-level
    imports of project modules, packages' ``__init__`` included)."""
    seen = {source}
    pending = [source]
    while pending and len(seen) < MAX_IMPORT_GRAPH:
        current = pending.pop()
        for imported in module_imports(index, current):
            if imported == target:
                return True
            if imported not in seen:
                seen.add(imported)
                pending.append(imported)
    return len(seen) >= MAX_IMPORT_GRAPH  # too large to tell: assume it does


def module_imports(index: ProjectIndex, path: Path) -> set[Path]:
    """The project modules importing ``path`` imports at module level (what runs when it is
    imported: not the bodies of functions)."""
    try:
        tree = index.ast_tree(path)
    except SourceError:
        return set()
    package = module_name_for(path)[1]
    found: set[Path] = set()
    for dotted in _imported_names(tree, package):
        parts = dotted.split(".")
        for cut in range(1, len(parts) + 1):  # importing a.b.c imports a, a.b and a.b.c
            module = index.module_named(".".join(parts[:cut]), path)
            if module is not None and module.path != path:
                found.add(module.path)
    return found


def _imported_names(tree: ast.Module, package: str) -> Iterator[str]:
    for node in _module_level(tree.body):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                anchor = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield f"{base}.{alias.name}" if base and alias.name != "*" else base


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run when the module is imported: into if/try/with/class bodies, not
    into functions."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for field_name in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(stmt, field_name, None)
            if isinstance(inner, list):
                statements = [s for s in inner if isinstance(s, ast.stmt)]
                handlers = [h for h in inner if isinstance(h, ast.ExceptHandler)]
                yield from _module_level(statements)
                for handler in handlers:
                    yield from _module_level(handler.body)


def names_of(index: ProjectIndex, module: ModuleInfo) -> Callable[[], set[str]]:
    """The names ``module`` uses, read when first needed."""

    def taken() -> set[str]:
        try:
            return taken_names(index.ast_tree(module.path))
        except SourceError:
            return set(module.names)

    return taken
