"""Edits to a module after its call sites are rewritten: the generated functions and the imports.

``call_sites`` replaces the call sites in one pass over the tree; ``pipeline.run`` then adds what
the new code needs at the top level of the module: the generated functions the sites call (after
the imports, or after the class they mirror), ``from <module> import <name>`` for a function
generated beside its Function in another file, and ``import torch``/``import math``. These edit
the module's top-level statements, not call sites, so they live apart from the transformer.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.model import Surrogate
from fgi_rewrite.rewrite.emit import emit_function


def add_functions(tree: cst.Module, functions: Sequence[tuple[str, Surrogate, str]]) -> cst.Module:
    """Insert generated functions after the imports that precede their first use (and after the
    class they mirror when it is a top-level class of this module)."""
    body = list(tree.body)
    for anchor, surrogate, name in functions:
        code = emit_function(surrogate, name)
        definition = cst.parse_module(code).body[0]
        position = _insert_position(body, anchor, name)
        definition = definition.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        body.insert(position, definition)
    return tree.with_changes(body=body)


def _insert_position(body: Sequence[cst.BaseStatement], anchor: str, used: str) -> int:
    """After the class ``anchor``; else after the last import (or the docstring) before the
    first top-level statement that uses the name ``used``: a notebook's cells run top to
    bottom, and the last import may be in a later cell than the first use."""
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.ClassDef) and stmt.name.value == anchor:
            return i + 1
    position = 0
    for i, stmt in enumerate(body[: _first_use(body, used)]):
        if _is_import(stmt):
            position = i + 1
        elif (
            i == 0
            and isinstance(stmt, cst.SimpleStatementLine)
            and isinstance(stmt.body[0], cst.Expr)
            and isinstance(stmt.body[0].value, cst.SimpleString)
        ):
            position = 1
    return position


def _is_import(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _first_use(body: Sequence[cst.BaseStatement], name: str) -> int:
    """The index of the first statement other than an import that names ``name`` (a def
    counts: it may be called before a later import runs); ``len(body)`` when none does."""

    class Uses(cst.CSTVisitor):
        found = False

        def visit_Name(self, node: cst.Name) -> None:
            self.found = self.found or node.value == name

    for i, stmt in enumerate(body):
        if not _is_import(stmt):
            uses = Uses()
            stmt.visit(uses)
            if uses.found:
                return i
    return len(body)


def ensure_from_import(tree: cst.Module, module: str, name: str) -> cst.Module:
    """Add ``from <module> import <name>`` before its first use unless it is there."""
    statement = cst.parse_statement(f"from {module} import {name}\n")
    body = list(tree.body)
    first = _first_use(body, name)
    if any(tree.code_for_node(s) == tree.code_for_node(statement) for s in body[:first]):
        return tree
    position = _insert_position(body, "", name)
    return tree.with_changes(body=[*body[:position], statement, *body[position:]])


def ensure_imports(tree: cst.Module, modules: Sequence[str]) -> cst.Module:
    """Add ``import torch`` / ``import math`` where the emitted code needs them and they are
    not imported before their first use."""
    body = list(tree.body)
    for module in modules:
        first = _first_use(body, module)
        if module not in _imported(body[:first]):
            position = _insert_position(body, "", module)
            body.insert(position, cst.parse_statement(f"import {module}\n"))
    return tree.with_changes(body=body) if len(body) != len(tree.body) else tree


def _imported(body: Sequence[cst.BaseStatement]) -> set[str]:
    """The modules ``import m`` binds as ``m`` in these statements."""
    present = set()
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        if alias.asname is None:
                            present.add(sym.code(alias.name).split(".")[0])
    return present
