"""Lay out the code the rewrite inserts as the project's black would, and nothing else.

The inserted statements (the FGI code before a rewritten call, the generated ``<name>_fgi``
functions, the added imports) are formatted with black's API at the project's settings, so that
a project that passes ``black --check`` before the rewrite passes it after; the user's own lines
are never reformatted. A statement the rewrite edits in place (a call replaced by a name) is
formatted only when black would have left its original unchanged: a black-formatted project stays
so, any other keeps its layout.

Black formats by lines whose length counts their indentation, so a block that sits at indentation
``w`` in the user's module is formatted dedented at ``line_length - w``: what black gives in place
(tests/test_formatting.py runs black over whole rewritten files to show it). libcst then renders
the parsed result with the module's own indentation and line endings.

The settings come from the nearest ``pyproject.toml`` between a file and the project root (the
root's, usually), read once per run: ``[tool.black]`` (``line-length``, ``target-version``, else
the versions black infers from ``requires-python``, ``skip-string-normalization``,
``skip-magic-trailing-comma``, ``preview``, ``unstable``, ``enable-unstable-feature``); without a
black line length, ruff's ``line-length`` (``.ruff.toml``, ``ruff.toml`` or ``[tool.ruff]``);
else 88. A value of the wrong type is ignored, as if absent. black is imported only when
something is formatted.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import libcst as cst

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

if TYPE_CHECKING:
    from black.mode import Mode, TargetVersion

Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement
# Compound statements whose first line may hold a rewritten reference (``def f(spike=Fn.apply):``)
Header = cst.FunctionDef | cst.ClassDef | cst.If | cst.While | cst.For | cst.With
HEADERS = (cst.FunctionDef, cst.ClassDef, cst.If, cst.While, cst.For, cst.With)

DEFAULT_LINE_LENGTH = 88  # black's and ruff's
PYPROJECT = "pyproject.toml"
RUFF_FILES = (".ruff.toml", "ruff.toml")  # ruff prefers these to pyproject.toml, in this order


@dataclass(frozen=True)
class BlackStyle:
    """The black settings of a project (defaults: black's own)."""

    line_length: int = DEFAULT_LINE_LENGTH
    target_versions: tuple[str, ...] = ()  # black's names: "py310"; empty: see requires_python
    requires_python: str = ""  # [project] requires-python, from which black infers the targets
    string_normalization: bool = True
    magic_trailing_comma: bool = True
    preview: bool = False
    unstable: bool = False
    enabled_features: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProjectStyles:
    """The style of every file of a run: that of the nearest directory, between the file and the
    project root, that holds a configuration file."""

    root: Path
    by_directory: tuple[tuple[Path, BlackStyle], ...] = ()

    def for_file(self, path: Path) -> BlackStyle:
        styles = dict(self.by_directory)
        for directory in path.parents:
            if directory in styles:
                return styles[directory]
            if directory == self.root:
                break
        return BlackStyle()


def project_styles(root: Path, files: Iterable[Path]) -> ProjectStyles:
    """Read the configuration files that govern ``files``, each once: the nearest
    ``pyproject.toml`` up to the root (with the ruff files beside it), else the root's ruff
    files."""
    found: dict[Path, BlackStyle] = {}
    seen: set[Path] = set()
    for path in files:
        for directory in path.parents:
            if directory in seen:
                break
            seen.add(directory)
            if (directory / PYPROJECT).is_file() or (
                directory == root and any((root / name).is_file() for name in RUFF_FILES)
            ):
                found[directory] = read_style(directory)
            if directory == root or not directory.is_relative_to(root):
                break
    return ProjectStyles(root, tuple(sorted(found.items())))


def _load(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
            return data
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}  # black reports a broken file itself; here it is as if absent


def _table(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        value = data.get(key)
        if not isinstance(value, dict):
            return {}
        data = value
    return {k.replace("--", "").replace("-", "_"): v for k, v in data.items()}


def read_style(directory: Path) -> BlackStyle:
    """The style the configuration files of ``directory`` give."""
    pyproject = _load(directory / PYPROJECT) if (directory / PYPROJECT).is_file() else {}
    black_table = _table(pyproject, "tool", "black")
    ruff_file = next((directory / n for n in RUFF_FILES if (directory / n).is_file()), None)
    ruff_table = _table(_load(ruff_file)) if ruff_file else _table(pyproject, "tool", "ruff")
    line_length = next(
        (
            value
            for value in (black_table.get("line_length"), ruff_table.get("line_length"))
            if isinstance(value, int) and not isinstance(value, bool) and value > 0
        ),
        DEFAULT_LINE_LENGTH,
    )
    requires = _table(pyproject, "project").get("requires_python")
    return BlackStyle(
        line_length=line_length,
        target_versions=_strings(black_table.get("target_version")),
        requires_python=requires if isinstance(requires, str) else "",
        string_normalization=not _flag(black_table, "skip_string_normalization"),
        magic_trailing_comma=not _flag(black_table, "skip_magic_trailing_comma"),
        preview=_flag(black_table, "preview"),
        unstable=_flag(black_table, "unstable"),
        enabled_features=_strings(black_table.get("enable_unstable_feature")),
    )


def _flag(table: dict[str, Any], key: str) -> bool:
    return table.get(key) is True


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(sorted({v.lower() for v in value if isinstance(v, str)}))


# ---- formatting ---------------------------------------------------------------------------------


def indent_width(indent: str) -> int:
    """Columns of an indentation as black counts them once tabs are expanded."""
    return len(indent.expandtabs(4))


def format_code(code: str, style: BlackStyle, indent: str = "", module_source: str = "") -> str:
    """``code`` (whole statements, unindented) as black lays it out at ``indent`` in a module.

    ``module_source``, the module's text, decides black's target versions when the project names
    none and ``code`` unpacks arguments (the one layout choice of inserted code that depends on
    them: a trailing comma after ``*args`` in a split call). Code black cannot read is returned
    as it is (it is valid Python: libcst rendered it)."""
    import black

    targets = _targets(style)
    if not targets and module_source and _UNPACKING.search(code):
        targets = _detected_targets(module_source)
    mode = _mode(style, max(1, style.line_length - indent_width(indent)), targets)
    try:
        return black.format_str(code, mode=mode)
    except Exception:  # black's own limits (an unsupported target, a parser gap): leave it
        return code


def format_statements(
    statements: Sequence[Statement] | str,
    style: BlackStyle,
    indent: str = "",
    module_source: str = "",
) -> list[Statement]:
    """Statements formatted by ``format_code``, parsed back: libcst renders them with the
    indentation and line endings of the module they are put in."""
    code = statements if isinstance(statements, str) else _render(statements)
    return list(cst.parse_module(format_code(code, style, indent, module_source)).body)


def is_formatted(
    statement: Statement, style: BlackStyle, indent: str = "", module_source: str = ""
) -> bool:
    """Whether black leaves ``statement`` as it is, at ``indent``."""
    code = _render([statement])
    return format_code(code, style, indent, module_source) == code


def edited_statement(
    original: cst.SimpleStatementLine,
    updated: cst.SimpleStatementLine,
    style: BlackStyle,
    indent: str,
    module_indent: str,
    module_source: str = "",
) -> cst.SimpleStatementLine:
    """A statement with a call or reference replaced, formatted when black would have left the
    original as it was (a black-formatted module stays so; any other keeps its layout)."""
    if not _may_be_black(module_indent):
        return updated
    bare = original.with_changes(leading_lines=())
    if not is_formatted(bare, style, indent, module_source):
        return updated
    formatted = format_statements(
        [updated.with_changes(leading_lines=())], style, indent, module_source
    )
    if len(formatted) != 1 or not isinstance(formatted[0], cst.SimpleStatementLine):
        return updated
    return formatted[0].with_changes(leading_lines=updated.leading_lines)


def edited_header(
    original: Header,
    updated: Header,
    style: BlackStyle,
    indent: str,
    module_indent: str,
    module_source: str = "",
) -> Header:
    """A compound statement whose first line (or decorators) had a reference replaced: that
    line formatted as ``edited_statement`` formats a statement, its body kept as it is."""
    if not isinstance(updated.body, cst.IndentedBlock) or not _may_be_black(module_indent):
        return updated
    if not isinstance(original.body, cst.IndentedBlock):
        return updated
    if not is_formatted(_stub(original), style, indent, module_source):
        return updated
    formatted = format_statements([_stub(updated)], style, indent, module_source)
    if len(formatted) != 1 or type(formatted[0]) is not type(updated):
        return updated
    changes: dict[str, Any] = {"body": updated.body, "leading_lines": updated.leading_lines}
    if isinstance(updated, cst.If | cst.While | cst.For):
        changes["orelse"] = updated.orelse
    return formatted[0].with_changes(**changes)


_PASS = cst.SimpleStatementLine(body=[cst.Pass()])


def _stub(node: Header) -> Header:
    """The statement's header over a body of ``pass`` (its own comment kept), no else."""
    assert isinstance(node.body, cst.IndentedBlock)
    changes: dict[str, Any] = {"body": node.body.with_changes(body=[_PASS]), "leading_lines": ()}
    if isinstance(node, cst.If | cst.While | cst.For):
        changes["orelse"] = None
    return node.with_changes(**changes)


def _may_be_black(module_indent: str) -> bool:
    """A module indented otherwise than with four spaces is never black's output."""
    return module_indent == "    "


def _render(statements: Sequence[Statement]) -> str:
    return cst.Module(body=list(statements)).code


# ``f(a, *rest)``, ``f(**options)``: black's trailing comma after them depends on the targets.
_UNPACKING = re.compile(r"[(,]\s*\*")


def _targets(style: BlackStyle) -> frozenset[TargetVersion]:
    from black.mode import TargetVersion

    if style.target_versions:
        return frozenset(
            TargetVersion[v.upper()]
            for v in style.target_versions
            if v.upper() in TargetVersion.__members__
        )
    if style.requires_python:
        return _inferred_targets(style.requires_python)
    return frozenset()


@functools.lru_cache(maxsize=16)
def _inferred_targets(requires_python: str) -> frozenset[TargetVersion]:
    """The targets black infers from ``requires-python`` (black's own function)."""
    try:
        from black.files import infer_target_version

        inferred = infer_target_version({"project": {"requires-python": requires_python}})
    except Exception:  # another black, or a specifier it cannot read: as if none were given
        return frozenset()
    return frozenset(inferred or ())


@functools.lru_cache(maxsize=8)
def _detected_targets(module_source: str) -> frozenset[TargetVersion]:
    """The targets black detects in a whole module when the project names none."""
    import black
    from black.parsing import lib2to3_parse

    try:
        node = lib2to3_parse(module_source.lstrip())
        future = black.get_future_imports(node)
        return frozenset(black.detect_target_versions(node, future_imports=future))
    except Exception:
        return frozenset()


@functools.lru_cache(maxsize=64)
def _mode(style: BlackStyle, line_length: int, targets: frozenset[TargetVersion]) -> Mode:
    from black.mode import Mode, Preview

    features = {Preview[name] for name in style.enabled_features if name in Preview.__members__}
    return Mode(
        target_versions=set(targets),
        line_length=line_length,
        string_normalization=style.string_normalization,
        magic_trailing_comma=style.magic_trailing_comma,
        preview=style.preview,
        unstable=style.unstable,
        enabled_features=features,
    )
