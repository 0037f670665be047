"""Edits to a module after its call sites are rewritten: the generated functions and the imports.

``call_sites`` replaces the call sites in one pass over the tree; ``pipeline.run`` then adds what
the new code needs at the top level of the module: the generated functions the sites call (after
the imports, or after the class they mirror), ``from <module> import <name>`` for a function
generated beside its Function in another file, and ``import torch``/``import math``. These edit
the module's top-level statements, not call sites, so they live apart from the transformer.
Given black's settings (``layout``), what they add is formatted, and separated from what follows
by the blank lines black wants (two after a function, one after an import).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import libcst as cst

from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.model import Surrogate
from fgi_rewrite.rewrite.emit import emit_function
from fgi_rewrite.rewrite.formatting import BlackStyle, Statement, format_statements


def add_functions(
    tree: cst.Module,
    functions: Sequence[tuple[str, Surrogate, str]],
    layout: BlackStyle | None = None,
) -> cst.Module:
    """Insert generated functions after the imports that precede their first use (and after the
    class they mirror when it is a top-level class of this module)."""
    if not functions:
        return tree
    definitions = _definitions([emit_function(s, name) for _, s, name in functions], layout)
    body = list(tree.body)
    for (anchor, _, name), definition in zip(functions, definitions, strict=True):
        position = _insert_position(body, anchor, name)
        definition = definition.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        body.insert(position, definition)
        if layout is not None:
            _separate(body, position + 1, 2)
    return tree.with_changes(body=body)


def _definitions(codes: Sequence[str], layout: BlackStyle | None) -> list[Statement]:
    """The functions' statements, formatted together (one call of black per module)."""
    if layout is not None:
        formatted = format_statements("\n\n".join(codes), layout)
        if len(formatted) == len(codes):
            return formatted
    return [cst.parse_module(code).body[0] for code in codes]


# project/notebook.py joins a notebook's cells into one module with a string statement before
# each cell ("__fgi_nb_cell_7__"); black formats each cell on its own, and a cell ends without
# blank lines.
_CELL_SEPARATOR = re.compile(r'"__fgi_nb\d*_cell_\d+__"')


def _separate(body: list[Statement], index: int, blank_lines: int) -> None:
    """At least ``blank_lines`` blank lines before ``body[index]`` (before its comments), unless
    it starts another notebook cell."""
    if index >= len(body) or _starts_cell(body[index]):
        return
    statement = body[index]
    leading = list(statement.leading_lines)
    present = next((i for i, line in enumerate(leading) if line.comment is not None), len(leading))
    if present < blank_lines:
        missing = [cst.EmptyLine() for _ in range(blank_lines - present)]
        body[index] = statement.with_changes(leading_lines=[*missing, *leading])


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
        elif i == 0 and _is_docstring(stmt):
            position = 1
    return position


def _is_import(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _first_use(body: Sequence[cst.BaseStatement], name: str) -> int:
    """The index of the first statement other than an import that names ``name`` (a def
    counts: it may be called before a later import runs); ``len(body)`` when none does. Only
    the statements before the last import are walked (a later use has every import before
    it), which in most modules is none: walking a 1,500-line module took about 1 s."""
    last_import = max((i for i, stmt in enumerate(body) if _is_import(stmt)), default=0)

    class Uses(cst.CSTVisitor):
        found = False

        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, cst.Name) and node.value == name:
                self.found = True
            return not self.found  # nothing more to look at once found

    for i, stmt in enumerate(body[:last_import]):
        if not _is_import(stmt):
            uses = Uses()
            stmt.visit(uses)
            if uses.found:
                return i
    return len(body)


def _starts_cell(statement: cst.BaseStatement) -> bool:
    string = _string_statement(statement)
    return string is not None and _CELL_SEPARATOR.fullmatch(string) is not None


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return _string_statement(statement) is not None


def _string_statement(statement: cst.BaseStatement) -> str | None:
    """The literal of a statement that is only a string (a docstring, a cell separator)."""
    if isinstance(statement, cst.SimpleStatementLine):
        small = statement.body[0]
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString):
            return small.value.value
    return None


def ensure_from_import(
    tree: cst.Module, module: str, name: str, layout: BlackStyle | None = None
) -> cst.Module:
    """Add ``from <module> import <name>`` before its first use unless it is there."""
    code = f"from {module} import {name}\n"
    (statement,) = format_statements(code, layout) if layout else [cst.parse_statement(code)]
    before = tree.body[: _first_use(tree.body, name)]
    if any(tree.code_for_node(s) == tree.code_for_node(statement) for s in before):
        return tree
    return _insert_imports(tree, [statement], layout, name)


def _insert_imports(
    tree: cst.Module, statements: Sequence[Statement], layout: BlackStyle | None, used: str
) -> cst.Module:
    """The imports after the last import before the first use of ``used``."""
    body = list(tree.body)
    position = _insert_position(body, "", used)
    added = list(statements)
    if layout is not None and position == 1 and _is_docstring(body[0]):
        added[0] = added[0].with_changes(leading_lines=[cst.EmptyLine()])  # black: one line
    body[position:position] = added
    if layout is not None:
        _separate(body, position + len(added), 1)
    return tree.with_changes(body=body)


def ensure_imports(
    tree: cst.Module, modules: Sequence[str], layout: BlackStyle | None = None
) -> cst.Module:
    """Add ``import torch`` / ``import math`` where the emitted code needs them and they are
    not imported before their first use."""
    for module in modules:
        if module not in _imported(tree.body[: _first_use(tree.body, module)]):
            tree = _insert_imports(
                tree, [cst.parse_statement(f"import {module}\n")], layout, module
            )
    return tree


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


def insert_imports(
    tree: cst.Module, statements: Sequence[str], layout: BlackStyle | None = None
) -> cst.Module:
    """Add import statements (source lines), each once, after the last import before the first
    use of the name each binds."""
    for code in dict.fromkeys(statements):
        if any(tree.code_for_node(s).strip() == code.strip() for s in tree.body):
            continue
        statement = cst.parse_statement(f"{code}\n")
        tree = _insert_imports(tree, [statement], layout, _bound_name(statement))
    return tree


def _bound_name(statement: cst.BaseStatement) -> str:
    """The name an ``import m [as n]`` or ``from m import x [as n]`` statement binds."""
    assert isinstance(statement, cst.SimpleStatementLine)
    small = statement.body[0]
    assert isinstance(small, (cst.Import, cst.ImportFrom))
    assert not isinstance(small.names, cst.ImportStar)
    alias = small.names[0]
    if alias.asname is not None:
        return sym.code(alias.asname.name)
    return sym.code(alias.name).split(".")[0]
