"""Name hygiene of inserted code: every free name it uses must mean, where it lands, what it
means in the Function's module.

The inserted code uses ``torch`` and ``math``, builtins (``abs``, ``range``...), the generated
functions, and the names that read run-time state (``references.py``: a module's bare globals,
or a name bound to a module). After the rewrite, scope analysis of the whole module (libcst's
``ScopeProvider``, run only for files that change) says what each of those names is bound to
where it is used:

* a module name (``torch``, ``math``, ``surrogates``) must reach a module-level import of that
  module and nothing else. Where it is unbound, the import is added; where a local, a parameter,
  a class attribute or a module-level binding of something else (``import numpy as math``)
  shadows it, the inserted code uses a private alias instead (``import torch as _fgi_torch``),
  so no import ever rebinds a name the module already uses;
* a bare global, a builtin or a generated function must not be shadowed: there is no alias for
  them, so such a call site is left unchanged (``FGI204``).

User code moved by the rewrite (call arguments bound to temporaries) is not inserted code: its
names keep whatever they meant.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import (
    BaseAssignment,
    BuiltinAssignment,
    GlobalScope,
    ImportAssignment,
    MetadataWrapper,
    ScopeProvider,
)

from fgi_rewrite.analysis import elementwise as ew
from fgi_rewrite.core.names import FreshNames
from fgi_rewrite.rewrite.formatting import BlackStyle
from fgi_rewrite.rewrite.module_edits import insert_imports


@dataclass(frozen=True)
class Intent:
    """What a free name of inserted code must denote: ``module`` (``target`` is its dotted name;
    ``statement`` imports it under the name), ``global`` (the module's own global),
    ``builtin``, or ``function`` (a generated function, bound by an inserted statement)."""

    kind: str
    target: str = ""
    statement: str = ""
    alias: str = ""  # the import under a private name, with ``{alias}`` for the name


def module_intent(dotted: str, statement: str = "", relative: str = "") -> Intent:
    """A module name: ``statement`` binds it; ``relative`` (``from . import x``) is how the
    module imports it under another name, when that is the module's own package."""
    statement = statement or f"import {dotted}"
    alias = f"{relative} as {{alias}}" if relative else f"import {dotted} as {{alias}}"
    return Intent("module", dotted, statement, alias)


def base_intents() -> dict[str, Intent]:
    """The names any inserted code may use: torch, math and the builtins of f and g."""
    intents = {"torch": module_intent("torch"), "math": module_intent("math")}
    intents.update((name, Intent("builtin", name)) for name in sorted(ew.BUILTINS | {"range"}))
    return intents


@dataclass
class Inserted:
    """What the rewrite inserted into one module."""

    # id of an inserted node (a statement, a generated function, a name) -> the call sites
    # (locations as text) that would be left unchanged if its names cannot be made right
    roots: dict[int, tuple[str, ...]] = field(default_factory=dict)
    moved: set[str] = field(default_factory=set)  # temporaries that hold moved user code
    intents: dict[str, Intent] = field(default_factory=dict)
    own: set[int] = field(default_factory=set)  # ids of inserted bindings (defs, imports)
    used: set[str] = field(default_factory=set)  # the free names the inserted code uses
    # The recorded nodes themselves: while they live, no other node can take one of their ids.
    kept: list[cst.CSTNode] = field(default_factory=list)

    def add(self, node: cst.CSTNode, sites: tuple[str, ...]) -> None:
        """Record an inserted statement, definition or name, and the names it uses."""
        self.roots[id(node)] = sites
        self.kept.append(node)
        self.used |= free_names(node, self.moved)


@dataclass(frozen=True)
class Checked:
    tree: cst.Module
    refused: Mapping[str, str]  # call site -> why its inserted code cannot be made hygienic


def apply(
    tree: cst.Module,
    inserted: Inserted,
    package: str,
    original: ast.Module | None = None,
    layout: BlackStyle | None = None,
) -> Checked:
    """Check every free name of the inserted code; alias shadowed module names, add the
    imports needed; say which call sites cannot be made right (``package``: of the module, for
    its relative imports; ``original``: the module before the rewrite, for the quick check;
    ``layout``: black's settings for the imports added)."""
    if not inserted.roots or not inserted.intents:
        return Checked(tree, {})
    if original is not None:
        # Scope analysis costs about a parse per file, more for large ones: skip it when no
        # name the inserted code uses is bound anywhere but by the expected import.
        unbound = _unbound_if_unshadowed(original, inserted, package)
        if unbound is not None:
            return Checked(_fixed(tree, inserted, {}, unbound, layout), {})
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    scopes = wrapper.resolve(ScopeProvider)
    uses = _uses(tree, inserted)
    global_scope = next((s for s in scopes.values() if isinstance(s, GlobalScope)), None)
    aliased: dict[int, str] = {}  # name node id -> module name it must use instead
    needs_import: set[str] = set()
    refused: dict[str, str] = {}
    for node, sites in uses:
        intent = inserted.intents[node.value]
        scope = scopes.get(node)
        found = set(scope[node.value]) if scope is not None else set()
        if intent.kind == "module":
            verdict = _module_verdict(found, node.value, intent.target, package)
            if verdict == "unbound":
                needs_import.add(node.value)
            elif verdict == "shadowed":
                aliased[id(node)] = node.value
            continue
        problem = _other_problem(intent, found, inserted.own)
        if problem:
            for site in sites:
                refused.setdefault(site, f"'{node.value}' {problem} there")
    if global_scope is not None:
        # A module name bound at module level to something else (``import numpy as math``):
        # adding ``import math`` would rebind it for the module's own code.
        for name in sorted(needs_import):
            if name in global_scope and global_scope[name]:
                needs_import.discard(name)
                aliased.update(
                    (id(node), name)
                    for node, _ in uses
                    if node.value == name and _unbound(scopes, node)
                )
    return Checked(_fixed(tree, inserted, aliased, needs_import, layout), refused)


def _unbound(scopes: Mapping[cst.CSTNode, object], node: cst.Name) -> bool:
    scope = scopes.get(node)
    return scope is None or not set(scope[node.value])  # type: ignore[index]


def _uses(tree: cst.Module, inserted: Inserted) -> list[tuple[cst.Name, tuple[str, ...]]]:
    """The names of inserted code that must keep their meaning, with the call sites each
    serves."""
    found: list[tuple[cst.Name, tuple[str, ...]]] = []
    intents, moved = inserted.intents, inserted.moved

    class Visitor(cst.CSTVisitor):
        def __init__(self) -> None:
            self.sites: list[tuple[str, ...]] = []

        def on_visit(self, node: cst.CSTNode) -> bool:
            if id(node) in inserted.roots:
                self.sites.append(inserted.roots[id(node)])
            if not self.sites:
                return True
            if isinstance(node, cst.Assign) and _assigns_moved(node, moved):
                return False  # the user's own expression, evaluated where it was
            if isinstance(node, cst.Name) and node.value in intents:
                found.append((node, self.sites[-1]))
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            if id(original_node) in inserted.roots:
                self.sites.pop()

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)  # ``x.torch`` is an attribute, not a use of ``torch``
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            node.value.visit(self)
            return False

        def visit_AssignTarget(self, node: cst.AssignTarget) -> bool:
            return False

        def visit_Param(self, node: cst.Param) -> bool:
            if node.default is not None:
                node.default.visit(self)
            return False

    tree.visit(Visitor())
    return found


def _assigns_moved(node: cst.Assign, moved: Collection[str]) -> bool:
    return (
        len(node.targets) == 1
        and isinstance(node.targets[0].target, cst.Name)
        and node.targets[0].target.value in moved
    )


def _module_verdict(found: set[BaseAssignment], name: str, target: str, package: str) -> str:
    """``ok`` (an import of ``target`` at module level, and only that), ``unbound`` or
    ``shadowed``."""
    if not found:
        return "unbound"
    for assignment in found:
        # An import of the module in the function itself (``def f(): import torch``) is fine.
        if not isinstance(assignment, ImportAssignment):
            return "shadowed"
        if _imported_module(assignment.node, name, package) != target:
            return "shadowed"
    return "ok"


def _imported_module(statement: cst.CSTNode, name: str, package: str) -> str | None:
    """The dotted module an import statement binds ``name`` to."""
    if isinstance(statement, cst.Import):
        for alias in statement.names:
            dotted = _dotted(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                if alias.asname.name.value == name:
                    return dotted
            elif dotted.split(".")[0] == name:
                return name
    if isinstance(statement, cst.ImportFrom) and not isinstance(statement.names, cst.ImportStar):
        base = _dotted(statement.module) if statement.module is not None else ""
        if statement.relative:
            parts = package.split(".") if package else []
            up = len(statement.relative) - 1
            anchor = parts[: len(parts) - up] if up else parts
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in statement.names:
            local = (
                alias.asname.name.value
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name)
                else _dotted(alias.name)
            )
            if local == name:
                return f"{base}.{_dotted(alias.name)}" if base else _dotted(alias.name)
    return None


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _other_problem(intent: Intent, found: set[BaseAssignment], own: Collection[int]) -> str:
    """Why a bare global, a builtin or a generated function does not mean what it must ('' if
    it does)."""
    if intent.kind == "builtin":
        if any(not isinstance(a, BuiltinAssignment) for a in found):
            return "is not the builtin"
        return ""
    if intent.kind == "global":
        if any(not isinstance(getattr(a, "scope", None), GlobalScope) for a in found):
            return "is bound to a local, a parameter or a class attribute, not the module global,"
        return ""
    if intent.kind == "function":
        if any(id(getattr(a, "node", None)) not in own for a in found):
            return "is bound to something else than the generated function"
        return ""
    return ""


def _fixed(
    tree: cst.Module,
    inserted: Inserted,
    aliased: Mapping[int, str],
    needs_import: set[str],
    layout: BlackStyle | None,
) -> cst.Module:
    """The tree with aliased names renamed and the imports added."""
    if not aliased and not needs_import:
        return tree
    taken = _all_names(tree)
    fresh = FreshNames(taken)
    aliases = {name: fresh(f"_fgi_{name}") for name in sorted(set(aliased.values()))}

    class Rename(cst.CSTTransformer):
        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
            name = aliased.get(id(original))
            return updated.with_changes(value=aliases[name]) if name is not None else updated

    if aliased:
        result = tree.visit(Rename())
        assert isinstance(result, cst.Module)
        tree = result
    statements = [inserted.intents[name].statement for name in sorted(needs_import)]
    statements += [
        _aliased_statement(inserted.intents[name], alias) for name, alias in sorted(aliases.items())
    ]
    return insert_imports(tree, [s for s in statements if s], layout)


def _aliased_statement(intent: Intent, alias: str) -> str:
    return intent.alias.format(alias=alias)


def _all_names(tree: cst.CSTNode) -> set[str]:
    names: set[str] = set()

    class Visitor(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            names.add(node.value)

    tree.visit(Visitor())
    return names


def free_names(node: cst.CSTNode, moved: Collection[str]) -> set[str]:
    """The names ``node`` reads (not attribute fields, keywords, targets or parameters), outside
    the user's own expressions that the rewrite moved into temporaries."""
    names: set[str] = set()

    class Visitor(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            names.add(n.value)

        def visit_Assign(self, n: cst.Assign) -> bool:
            if not _assigns_moved(n, moved):
                n.value.visit(self)
            return False

        def visit_Attribute(self, n: cst.Attribute) -> bool:
            n.value.visit(self)
            return False

        def visit_Arg(self, n: cst.Arg) -> bool:
            n.value.visit(self)
            return False

        def visit_Param(self, n: cst.Param) -> bool:
            if n.default is not None:
                n.default.visit(self)
            if n.annotation is not None:
                n.annotation.visit(self)
            return False

        def visit_FunctionDef(self, n: cst.FunctionDef) -> bool:
            n.params.visit(self)
            if n.returns is not None:
                n.returns.visit(self)
            n.body.visit(self)
            return False

    node.visit(Visitor())
    return names


def _unbound_if_unshadowed(
    original: ast.Module, inserted: Inserted, package: str
) -> set[str] | None:
    """The module names to import when nothing in the module (before the rewrite) binds a name
    the inserted code uses, except module-level imports of what it must denote; None when
    something may (then the scope analysis decides)."""
    used = {n for n in inserted.used if n in inserted.intents}
    module_level, nested = _bindings(original, used, package)
    unbound = set()
    for name in used:
        intent = inserted.intents[name]
        if name in nested:
            return None
        if intent.kind == "module":
            bound = module_level.get(name, [])
            if not bound:
                unbound.add(name)
            elif any(target != intent.target for target in bound):
                return None
        elif intent.kind in ("builtin", "function") and name in module_level:
            return None
    return unbound


def _bindings(
    tree: ast.Module, names: Collection[str], package: str
) -> tuple[dict[str, list[str | None]], set[str]]:
    """For ``names``: what module-level statements bind each to (the dotted module an import
    binds, None for anything else), and which are bound in a function, class or comprehension."""
    module_level: dict[str, list[str | None]] = {}
    nested: set[str] = set()

    def bind(name: str, target: str | None, depth: int) -> None:
        if name in names:
            if depth:
                nested.add(name)
            else:
                module_level.setdefault(name, []).append(target)

    for node, depth in _walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                bind(local, alias.name if alias.asname else local, depth)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            for alias in node.names:
                bind(alias.asname or alias.name, f"{base}.{alias.name}" if base else None, depth)
        elif isinstance(node, ast.Global):
            for name in node.names:
                bind(name, None, 0)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bind(node.name, None, depth)
        elif isinstance(node, ast.arg):
            bind(node.arg, None, 1)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bind(node.id, None, depth)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bind(node.name, None, depth)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bind(node.name, None, depth)
    return module_level, nested


def _walk(tree: ast.Module) -> Iterator[tuple[ast.AST, int]]:
    """Every node with its depth in functions, classes, lambdas and comprehensions."""
    scoped = (
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.ClassDef,
        ast.Lambda,
        ast.ListComp,
        ast.SetComp,
        ast.DictComp,
        ast.GeneratorExp,
    )
    pending: list[tuple[ast.AST, int]] = [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        yield node, depth
        inner = depth + 1 if isinstance(node, scoped) else depth
        pending.extend((child, inner) for child in ast.iter_child_nodes(node))


def _absolute(node: ast.ImportFrom, package: str) -> str:
    base = node.module or ""
    if node.level:
        parts = package.split(".") if package else []
        anchor = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
        base = ".".join([*anchor, *([base] if base else [])])
    return base
