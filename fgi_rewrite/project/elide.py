"""Big files in bounded memory: the top-level statements a run cannot need are left out.

A libcst tree takes about a thousand times its source's size and a stdlib AST about a hundred
(a 5 MB generated module with one call: 4.5 GB and 208 s of CPU, docs/benchmarks.md). For a
file of ``THRESHOLD`` bytes or more, the reader (``source_module.SourceReader``) serves a
*reduced* source instead: the top-level statements are found by parsing the file in groups of
about ``GROUP`` bytes (the stdlib AST of one group at a time, which is also the file's syntax
check), and each statement that nothing relevant can depend on is replaced by a placeholder of
as many lines: a string statement (three double quotes) holding the marker, the identifiers it
stands for and the statement's line ends, as in ``@fgi-elided 17: W_17 layer_17 torch``
followed by the newlines.

Line numbers (and the columns of the statements kept) are those of the file; consecutive
statements left out share one placeholder, which names every identifier of what it replaces
(that no earlier placeholder names), so that fresh names (``ModuleInfo.names``) and the "is it
still used" questions (a text search) see them, and binds nothing. ``restore`` puts the
original statements back into any rewritten version of the reduced source (they are never
edited), before the result is written, shown or imported.

A statement is kept (conservatively, by its text and its stdlib AST) when it mentions
``Function``, ``apply`` or ``autograd`` (or what ``higher_order.py`` scans for:
``create_graph``, ``torch.func``, ``hvp``, a ``grad(``/``backward(`` call...), imports
(also inside a module-level ``try``, ``if`` or ``with``), names ``globals``/``setattr``/...,
binds a name another file of the project mentions (that file may import it), uses a name that a
kept statement binds (other than an import of the standard library, torch or numpy), or binds a
name a kept statement uses or binds; to a fixed point. What is left out therefore defines no
Function, holds no call that may reach one, changes no value the kept statements read, and is
named nowhere else in the project.
"""

from __future__ import annotations

import ast
import codecs
import itertools
import keyword
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

THRESHOLD = 256 * 1024  # bytes; smaller files are read as they are
GROUP = 64 * 1024  # bytes of source parsed at a time

# Text that makes a statement relevant by itself: what may define or reach a Function, and
# what the higher-order scan (``higher_order.py``) looks for, since it reads the same source.
_RELEVANT = re.compile(
    r"Function|apply|autograd|__getattr__|__all__"
    r"|create_graph|gradgradcheck|\bfunc\b|functorch|hessian|\bhvp\b|\bvhp\b|\bjvp\b|\bvjp\b"
    r"|jacfwd|jacrev|linearize|forward_ad|grad_and_value|\bgrad\(|\bbackward\("
)
# Names that bind or look up names at run time.
_DYNAMIC = frozenset(
    {"globals", "locals", "vars", "setattr", "delattr", "exec", "eval", "__import__", "__dict__"}
)
# Imports whose names are never a surrogate: the standard library, torch, numpy.
_EXTERNAL = frozenset(sys.stdlib_module_names) | {"torch", "numpy", "scipy"}
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_IDENTIFIER = re.compile(r"\b[^\W\d]\w*")
# Lines that may start a top-level statement (group boundaries; a wrong guess only costs time).
_START = re.compile(
    r"(?!(?:else|elif|except|finally)\b)"
    r"(?:@|(?:async|def|class|import|from|if|for|while|with|try|match)\b|[^\W\d]\w*\s*[=(\[.:,+\-*/])"
)
_MARKER = "@fgi-elided"


@dataclass(frozen=True)
class Reduced:
    """A file's reduced source and what ``restore`` needs: each placeholder and its text."""

    data: bytes
    elided: tuple[tuple[str, str], ...]  # (placeholder, original text), in file order


_cache: dict[Path, tuple[bytes, int, Reduced | None]] = {}
_words: dict[int, tuple[set[str], dict[Path, set[str]]]] = {}


def reduction_count(path: Path) -> int:
    """How many reductions of ``path`` this process holds (tests: 0 or 1)."""
    return int(path in _cache)


def forget() -> None:
    """Drop the reductions computed so far (tests)."""
    _cache.clear()
    _words.clear()


def reduce(path: Path, data: bytes, project: tuple[Path, ...] = ()) -> bytes:
    """The source the run reads for ``path``: ``data`` itself, or its reduced form."""
    reduced = reduction(path, data, project)
    return data if reduced is None else reduced.data


def reduction(path: Path, data: bytes, project: tuple[Path, ...] = ()) -> Reduced | None:
    """``data`` reduced, or None when it is small, not plain UTF-8, not valid Python or has
    nothing to leave out (computed once per content in this process). A statement that binds a
    name another file of ``project`` mentions is kept: that file may import it."""
    if len(data) < THRESHOLD or path.suffix != ".py":
        return None
    key = hash(project)
    cached = _cache.get(path)
    if cached is not None and cached[0] == data and cached[1] == key:
        return cached[2]
    result = _reduce(data, _mentioned_elsewhere(path, project))
    _cache[path] = (data, key, result)
    return result


def _mentioned_elsewhere(path: Path, project: tuple[Path, ...]) -> set[str]:
    """The identifiers of the other files of the project (read once per project)."""
    key = hash(project)
    if key not in _words:
        small: set[str] = set()
        big: dict[Path, set[str]] = {}
        for other in project:
            try:
                data = other.read_bytes()
            except OSError:
                continue
            words = set(_IDENTIFIER.findall(data.decode("utf-8", "replace")))
            if len(data) >= THRESHOLD:
                big[other] = words
            else:
                small |= words
        _words[key] = (small, big)
    small, big = _words[key]
    return small.union(*(words for other, words in big.items() if other != path))


def restore(path: Path, data: bytes, project: tuple[Path, ...] = ()) -> bytes:
    """``data`` (the reduced source of ``path``, maybe rewritten) with the statements that were
    left out put back. Raises ValueError if a placeholder is missing (they are never edited) or
    the file changed since it was reduced."""
    if _MARKER.encode() not in data:
        return data
    cached = _cache.get(path)
    if cached is None:  # reduced in a worker process: the same reduction, here
        reduction(path, path.read_bytes(), project)
        cached = _cache.get(path)
    if cached is None or cached[2] is None:
        raise ValueError(f"{path}: cannot restore the statements read without")
    text = data.decode("utf-8")
    out: list[str] = []
    position = 0
    for placeholder, original in cached[2].elided:
        found = text.find(placeholder, position)
        if found < 0:
            raise ValueError(f"{path}: a placeholder of a left-out statement is missing")
        out.append(text[position:found])
        out.append(original)
        position = found + len(placeholder)
    out.append(text[position:])
    return "".join(out).encode("utf-8")


# ---- finding the top-level statements ------------------------------------------------------------


@dataclass
class _Unit:
    """Lines ``[first, end)`` of the file: one top-level statement (or several on one line) and
    the comment and blank lines before it."""

    first: int
    end: int
    keep: bool = False
    binds: frozenset[str] = frozenset()
    uses: frozenset[str] = frozenset()  # every identifier of its text
    imports: frozenset[str] = frozenset()  # names bound by imports of external modules


def _reduce(data: bytes, elsewhere: set[str]) -> Reduced | None:
    if data.startswith(codecs.BOM_UTF8) or _MARKER.encode() in data:
        return None
    try:
        text = data.decode("utf-8")
        lines = _LINE.findall(text)
        units = list(_units(lines))
    except (UnicodeDecodeError, SyntaxError, ValueError, RecursionError):
        return None  # read as it is: the run reports the problem
    for unit in units:
        unit.keep = unit.keep or not unit.binds.isdisjoint(elsewhere)
    _decide(units)
    if all(u.keep for u in units):
        return None
    seen: set[str] = set()  # named by an earlier placeholder
    parts: list[str] = []
    elided: list[tuple[str, str]] = []
    for keep, run in itertools.groupby(units, key=lambda u: u.keep):
        group = list(run)
        span = lines[group[0].first : group[-1].end]
        original = "".join(span)
        if keep:
            parts.append(original)
            continue
        names = sorted(set().union(*(u.uses for u in group)) - seen)
        seen.update(names)
        placeholder = _placeholder(len(elided), span, names)
        parts.append(placeholder)
        elided.append((placeholder, original))
    return Reduced("".join(parts).encode("utf-8"), tuple(elided))


def _placeholder(index: int, lines: list[str], names: list[str]) -> str:
    """A string statement of as many lines, naming the identifiers of what it replaces."""
    usable = [n for n in names if n.isidentifier() and not keyword.iskeyword(n)]
    endings = [line[len(line.rstrip("\r\n")) :] for line in lines]
    inner = "".join(endings[:-1])
    return f'"""{_MARKER} {index}: {" ".join(usable)}{inner}"""' + endings[-1]


def names_left_out(tree: cst.Module) -> set[str]:
    """The identifiers the placeholders of a reduced module stand for."""
    found: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
            small = statement.body[0]
            if (
                isinstance(small, cst.Expr)
                and isinstance(small.value, cst.SimpleString)
                and small.value.value.startswith(f'"""{_MARKER} ')
            ):
                found.update(small.value.value[3:-3].split(":", 1)[1].split())
    return found


def _units(lines: list[str]) -> Iterator[_Unit]:
    """The top-level statements, from the stdlib AST of one group of lines at a time; raises
    SyntaxError if the file is not valid Python."""
    boundaries = _boundaries(lines)
    cursor = 0  # the first line not yet in a unit
    previous: _Unit | None = None
    start = 0
    while start < len(lines):
        end = next((b for b in boundaries if b > start), len(lines))
        while True:
            try:
                tree = ast.parse("".join(lines[start:end]))
                break
            except SyntaxError:
                if end >= len(lines):
                    raise
                # The group was cut inside a statement (a string holding code): twice as many
                # lines, so that the total cost stays linear.
                grown = end + max(end - start, 1)
                end = next((b for b in boundaries if b >= grown), len(lines))
        for statement in tree.body:
            decorators = getattr(statement, "decorator_list", [])
            last = start + (statement.end_lineno or statement.lineno)
            first = start + min([statement.lineno, *(d.lineno for d in decorators)]) - 1
            text = "".join(lines[first:last])
            if previous is not None and first < previous.end:
                previous.end = max(previous.end, last)  # ``a = 1; b = 2``: one line
                _summarize(previous, statement, text)
                continue
            if previous is not None:
                yield previous
            previous = _Unit(cursor, last)
            _summarize(previous, statement, text)
            cursor = last
        del tree
        start = end
    if previous is None:
        return
    previous.end = len(lines)  # the comment and blank lines at the end
    yield previous


def _boundaries(lines: list[str]) -> list[int]:
    """Line indexes where a group may start: at least ``GROUP`` bytes apart, on a line that looks
    like the start of a top-level statement (and does not follow a decorator)."""
    found: list[int] = []
    size = 0
    after_decorator = False
    for index, line in enumerate(lines):
        size += len(line)
        if line[:1] in ("", " ", "\t", "#", "\r", "\n", "\f"):
            continue
        starts = bool(_START.match(line))
        if starts and size >= GROUP and not after_decorator:
            found.append(index)
            size = 0
        after_decorator = line.startswith("@")
    return found


def _summarize(unit: _Unit, statement: ast.stmt, text: str) -> None:
    """What the unit binds and reads: its identifiers (a superset of the names it reads: also
    attributes, strings and comments) and the module-level names the statement binds."""
    binds, imports = _bindings(statement, text)
    uses = set(_IDENTIFIER.findall(text))
    unit.binds |= binds
    unit.imports |= imports
    unit.uses |= uses
    unit.keep = (
        unit.keep
        or isinstance(statement, (ast.Import, ast.ImportFrom))
        or _guarded_import(statement, text)
        or bool(uses & _DYNAMIC)
        or bool(_RELEVANT.search(text))
    )


def _guarded_import(statement: ast.stmt, text: str) -> bool:
    """An import in a module-level ``try``/``if``/``with`` (``try: from x import *``)."""
    return (
        isinstance(statement, (ast.Try, ast.If, ast.With))
        and "import" in text
        and any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(statement))
    )


def _bindings(statement: ast.stmt, text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The module-level names ``statement`` binds, and those bound by importing an external
    module (the standard library, torch, numpy)."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        binds, imports = set(), set()
        for alias in statement.names:
            name = alias.asname or alias.name.split(".")[0]
            binds.add(name)
            if isinstance(statement, ast.Import):
                root = alias.name.split(".")[0]
            else:  # a relative import is the project's own
                root = "" if statement.level else (statement.module or "").split(".")[0]
            if root in _EXTERNAL:
                imports.add(name)
        return frozenset(binds), frozenset(imports)
    deep = ":=" in text or "global" in text or "nonlocal" in text
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not deep:
        return frozenset({statement.name}), frozenset()
    targets: list[ast.AST] = [statement]
    if not deep and isinstance(statement, ast.Assign):
        targets = list(statement.targets)
    elif not deep and isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        targets = [statement.target]
    elif not deep and isinstance(statement, ast.Expr):
        return frozenset(), frozenset()
    return frozenset(_walk_bindings(targets)), frozenset()


def _walk_bindings(roots: list[ast.AST]) -> set[str]:
    """Names bound at module level under ``roots`` (not in function or class bodies), and the
    names ``global``/``nonlocal`` declare anywhere."""
    binds: set[str] = set()
    stack = [(node, True) for node in roots]  # (node, at module level)
    while stack:
        node, module_level = stack.pop()
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            binds.update(node.names)
        elif not module_level:
            pass
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            binds.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            binds.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar, ast.ExceptHandler)) and node.name:
            binds.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            binds.add(node.rest)
        inner = module_level and not isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
        )
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))
    return binds


def _decide(units: list[_Unit]) -> None:
    """Keep, to a fixed point, what the kept statements read and what reads their names."""
    by_bound: dict[str, list[_Unit]] = {}
    by_used: dict[str, list[_Unit]] = {}
    for unit in units:
        for name in unit.binds:
            by_bound.setdefault(name, []).append(unit)
        for name in unit.uses:
            by_used.setdefault(name, []).append(unit)
    work = [u for u in units if u.keep]
    while work:
        unit = work.pop()
        # What it reads may be bound elsewhere; what it binds (but external imports) may be
        # read elsewhere (an alias of ``apply``, a class, a value).
        linked = [w for name in unit.uses for w in by_bound.get(name, ())]
        linked += [w for name in unit.binds - unit.imports for w in by_used.get(name, ())]
        linked += [w for name in unit.binds for w in by_bound.get(name, ())]  # rebinds
        for other in linked:
            if not other.keep:
                other.keep = True
                work.append(other)
