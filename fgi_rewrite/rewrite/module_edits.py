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
    """Insert generated functions after the imports (and after the class they mirror when it is a
    top-level class of this module)."""
    body = list(tree.body)
    for anchor, surrogate, name in functions:
        code = emit_function(surrogate, name)
        definition = cst.parse_module(code).body[0]
        position = _insert_position(body, anchor)
        definition = definition.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        body.insert(position, definition)
    return tree.with_changes(body=body)


def _insert_position(body: Sequence[cst.BaseStatement], anchor: str) -> int:
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.ClassDef) and stmt.name.value == anchor:
            return i + 1
    position = 0
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and all(
            isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
        ):
            position = i + 1
        elif (
            i == 0
            and isinstance(stmt, cst.SimpleStatementLine)
            and isinstance(stmt.body[0], cst.Expr)
            and isinstance(stmt.body[0].value, cst.SimpleString)
        ):
            position = 1
    return position


def ensure_from_import(tree: cst.Module, module: str, name: str) -> cst.Module:
    """Add ``from <module> import <name>`` after the imports unless it is there."""
    statement = cst.parse_statement(f"from {module} import {name}\n")
    if any(tree.code_for_node(s) == tree.code_for_node(statement) for s in tree.body):
        return tree
    body = list(tree.body)
    position = _insert_position(body, "")
    return tree.with_changes(body=[*body[:position], statement, *body[position:]])


def ensure_imports(tree: cst.Module, modules: Sequence[str]) -> cst.Module:
    """Add ``import torch`` / ``import math`` when the emitted code needs them and they are
    missing."""
    present = set()
    for stmt in tree.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        if alias.asname is None:
                            present.add(sym.code(alias.name).split(".")[0])
    missing = [m for m in modules if m not in present]
    if not missing:
        return tree
    body = list(tree.body)
    position = _insert_position(body, "")
    lines = [cst.parse_statement(f"import {m}\n") for m in missing]
    return tree.with_changes(body=[*body[:position], *lines, *body[position:]])


def insert_imports(tree: cst.Module, statements: Sequence[str]) -> cst.Module:
    """Add import statements (source lines) after the module's imports, each once."""
    present = {tree.code_for_node(s).strip() for s in tree.body}
    wanted = [s for s in dict.fromkeys(statements) if s.strip() not in present]
    if not wanted:
        return tree
    body = list(tree.body)
    position = _insert_position(body, "")
    lines = [cst.parse_statement(f"{s}\n") for s in wanted]
    return tree.with_changes(body=[*body[:position], *lines, *body[position:]])
