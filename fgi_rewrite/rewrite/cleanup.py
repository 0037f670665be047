"""``--remove-unused``: after the rewrite, drop the Function classes, ``apply`` aliases and imports
that nothing in the project references any more.

References are counted on the final text of every project file (a name in ``__all__``, a
docstring or another module keeps a class alive), so a public Function that users of the package
may still import is only removed when the project itself no longer names it anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import libcst as cst


def _mentions(texts: Iterable[str], name: str) -> int:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return sum(len(pattern.findall(text)) for text in texts)


def removable_names(texts: Mapping[Path, str], home: Path, classes: Iterable[str]) -> set[str]:
    """Classes of ``home`` (and their module-level ``alias = Cls.apply``) that no file mentions
    except through their own definition and aliases."""
    tree = cst.parse_module(texts[home])
    aliases: dict[str, list[str]] = {}
    for stmt in tree.body:
        if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
            small = stmt.body[0]
            if isinstance(small, cst.Assign) and len(small.targets) == 1:
                target, value = small.targets[0].target, small.value
                if (
                    isinstance(target, cst.Name)
                    and isinstance(value, cst.Attribute)
                    and value.attr.value == "apply"
                    and isinstance(value.value, cst.Name)
                ):
                    aliases.setdefault(value.value.value, []).append(target.value)
    removable: set[str] = set()
    for name in classes:
        own = aliases.get(name, [])
        # The class is named by its ``class`` line and once per alias line; each alias once.
        if _mentions(texts.values(), name) == 1 + len(own) and all(
            _mentions(texts.values(), alias) == 1 for alias in own
        ):
            removable.add(name)
            removable.update(own)
    return removable


def remove_definitions(source: bytes, names: set[str]) -> bytes:
    """Drop module-level classes and single-name assignments called ``names``."""
    tree = cst.parse_module(source)
    body: list[cst.BaseStatement] = []
    # The blank lines before a removed statement separate what follows it from what precedes.
    spacing: Sequence[cst.EmptyLine] | None = None
    for stmt in tree.body:
        if _defines(stmt, names):
            spacing = stmt.leading_lines if spacing is None else spacing
            continue
        if spacing is not None:
            stmt = stmt.with_changes(leading_lines=spacing)
            spacing = None
        body.append(stmt)
    return tree.with_changes(body=body).bytes


def _defines(stmt: cst.BaseStatement, names: set[str]) -> bool:
    if isinstance(stmt, cst.ClassDef):
        return stmt.name.value in names
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        small = stmt.body[0]
        return (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
            and small.targets[0].target.value in names
        )
    return False


def remove_unused_imports(before: bytes, after: bytes) -> bytes:
    """Drop names imported at module level that ``before`` used and ``after`` no longer does
    (imports that were already unused are the user's business and stay)."""
    tree = cst.parse_module(after)
    old_text, new_text = before.decode("utf-8", "replace"), tree.code
    body = []
    for stmt in tree.body:
        if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
            small = stmt.body[0]
            if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(
                small.names, cst.ImportStar
            ):
                kept = [
                    alias for alias in small.names if not _stale(_bound(alias), old_text, new_text)
                ]
                if not kept:
                    continue
                if len(kept) != len(small.names):
                    # The last name takes the last comma there was: none, or the trailing comma
                    # of a list black laid out one name per line (which keeps it so).
                    kept[-1] = kept[-1].with_changes(comma=small.names[-1].comma)
                    stmt = stmt.with_changes(body=[small.with_changes(names=kept)])
        body.append(stmt)
    return tree.with_changes(body=body).bytes


def _bound(alias: cst.ImportAlias) -> str:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return cst.Module(body=[]).code_for_node(alias.name).split(".")[0]


def _stale(name: str, old_text: str, new_text: str) -> bool:
    return _mentions([old_text], name) > 1 and _mentions([new_text], name) == 1
