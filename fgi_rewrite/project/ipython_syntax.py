"""IPython syntax in one notebook cell: masked so that the cell is Python, restored byte for byte.

The rules are IPython's own (``IPython.core.inputtransformer2``), without IPython: at the start of
a logical line, ``%magic``, ``!cmd``, ``?obj``/``??obj``, a line ending in ``obj?`` and the
right-hand side of ``x = %magic``/``x = !cmd`` (with their backslash continuations) are replaced by
a name, which ``split_module`` puts back. A first line ``%%time``, ``%%timeit``, ``%%capture`` or
``%%prun`` makes the cell Python run in the kernel's namespace: its header line is masked. Other
cell magics (``%%bash``, ``%%writefile``, ``%%python3``, which runs a separate process) make the
cell another language. A cell indented as a whole is dedented, as IPython does. Autocall lines
(``/f x``, ``,f a b``, ``;f a``) hide calls, so they are not masked: their cell does not parse.
"""

from __future__ import annotations

import ast
import difflib
import itertools
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# Cell magics whose body is Python run in the kernel's namespace (black's list, less the ones
# that start another interpreter: python, python2, python3, pypy).
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
_ESCAPES = ("%", "!", "?")
# IPython's ``_help_end_re``: ``obj?``, ``obj.attr??``, ``%magic?``, ``a[0]?``.
_HELP_END = re.compile(r"%{0,2}(?!\d)[\w*]+(?:\.(?!\d)[\w*]+|\[-?[0-9]+\])*\?\??")
_HELP_AT_END = re.compile(_HELP_END.pattern + "$")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def split_lines(text: str) -> list[str]:
    """Lines as Python reads them (``\\n``, ``\\r\\n`` or ``\\r``; not str.splitlines's form
    feeds and separators), with their endings."""
    return _LINE.findall(text)


@dataclass(frozen=True)
class Mask:
    token: str  # the name standing for the IPython syntax in the module
    original: str  # the exact text it replaces (its continuation lines included)


@dataclass(frozen=True)
class MaskedCell:
    text: str
    masks: tuple[Mask, ...]
    cell_lines: tuple[int, ...]  # the cell's line (1-based) of each line of ``text``
    problem: str | None = None  # why ``text`` does not parse
    problem_line: int = 1  # where, as a line of the cell
    indent: str = ""  # removed from every line: IPython dedents a cell indented as a whole


def mask_cell(
    source: str, prefix: str = "__fgi_nb_", tokens: Iterator[int] | None = None
) -> MaskedCell | str:
    """The cell with its IPython syntax masked, or why it is not Python (``"%%bash cell"``)."""
    tokens = tokens if tokens is not None else itertools.count()
    lines = split_lines(source)
    error = _syntax_error(source)
    if error is None:
        return MaskedCell(source, (), tuple(range(1, len(lines) + 1)))
    indent = _margin(lines)
    lines = [_dedent(line, indent) for line in lines]
    header = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    out: list[str] = []
    cell_lines: list[int] = []
    masks: list[Mask] = []
    state = _Lex()
    i = 0
    while i < len(lines):
        body = lines[i].rstrip("\r\n")
        column = _magic_column(body) if state.at_start else None
        if i == header and body.startswith("%%") and not _HELP_END.fullmatch(body.rstrip()):
            name = re.split(r"\s", body[2:], maxsplit=1)[0]
            if name not in PYTHON_CELL_MAGICS:
                return f"%%{name} cell"
            column = 0
        if column is None:
            state = state.advance(body)
            out.append(lines[i])
            cell_lines.append(i + 1)
            i += 1
            continue
        last = i
        while last + 1 < len(lines) and lines[last].rstrip("\r\n").endswith("\\"):
            last += 1  # IPython joins a magic's backslash continuations
        joined = "".join(lines[i : last + 1])
        ending = joined[len(joined.rstrip("\r\n")) :]
        token = f"{prefix}magic_{next(tokens)}__"
        masks.append(Mask(token, joined[column : len(joined) - len(ending)]))
        out.append(body[:column] + token + ending)
        cell_lines.append(i + 1)
        state = _Lex()
        i = last + 1
    text = "".join(out)
    error = _syntax_error(text) if masks or indent else error
    if error is None:
        return MaskedCell(text, tuple(masks), tuple(cell_lines), indent=indent)
    message, line = error
    if 1 <= line <= len(cell_lines):
        line = cell_lines[line - 1]  # a line of the cell, not of the masked text
    problem = f"cannot parse: {message} (line {line})"
    return MaskedCell(text, tuple(masks), tuple(cell_lines), problem, max(line, 1), indent)


def _margin(lines: Sequence[str]) -> str:
    """The indentation common to all non-blank lines (as ``textwrap.dedent`` finds it)."""
    indents = [line[: len(line) - len(line.lstrip(" \t"))] for line in lines if line.strip()]
    return os.path.commonprefix(indents) if indents else ""


def _dedent(line: str, indent: str) -> str:
    if not indent:
        return line
    return line[len(indent) :] if line.strip() else line.lstrip(" \t")


def reindent(text: str, original: str, indent: str) -> str:
    """Undo the dedent of a cell indented as a whole: its unchanged lines as they were (blank
    lines with their spaces), the others indented again."""
    old = split_lines(original)
    new = split_lines(text)
    matcher = difflib.SequenceMatcher(None, [_dedent(line, indent) for line in old], new, False)
    out: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(old[i1:i2])
        else:
            out.extend(indent + line if line.strip() else line for line in new[j1:j2])
    return "".join(out)


def _magic_column(body: str) -> int | None:
    """Where IPython syntax starts on a line that starts a logical line, if it has some."""
    stripped = body.lstrip(" \t")
    if stripped.startswith(_ESCAPES) or _help_request(body):
        return len(body) - len(stripped)
    return _assigned_magic(body)


def _help_request(body: str) -> bool:
    """IPython's HelpEnd: a line whose last token is ``?`` asks for help on the name before it
    (``a = b??`` too: the assignment is dropped), however the line starts."""
    code = body.rstrip()
    chars, quote = _code_chars(code)
    return (
        bool(chars)
        and not quote
        and chars[-1] == (len(code) - 1, "?")
        and _HELP_AT_END.search(code) is not None
    )


def _assigned_magic(body: str) -> int | None:
    """The column of ``%magic``/``!cmd`` after the line's first top-level ``=`` (IPython's
    MagicAssign and SystemAssign)."""
    depth = 0
    for i, char in _code_chars(body)[0]:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char == "=" and depth == 0:
            if body[i + 1 : i + 2] == "=" or (i > 0 and body[i - 1] in "=!<>:+-*/%&|^@"):
                return None  # a comparison or an augmented assignment
            rhs = body[i + 1 :].lstrip(" \t")
            if rhs.startswith("!") or re.match(r"%[^\W\d]", rhs):
                return len(body) - len(rhs)
            return None
    return None


def _code_chars(text: str, quote: str = "") -> tuple[list[tuple[int, str]], str]:
    """The characters of a line outside strings and comments, with their index, and the
    delimiter of a string still open at its end (``quote``: the one open at its start)."""
    chars: list[tuple[int, str]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
            elif text.startswith(quote, i):
                i, quote = i + len(quote), ""
            else:
                i += 1
        elif char == "#":
            break
        elif char in "\"'":
            quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else char
            i += len(quote)
        else:
            chars.append((i, char))
            i += 1
    return chars, quote


@dataclass(frozen=True)
class _Lex:
    """Just enough of Python's tokenizer to tell where logical lines start."""

    depth: int = 0  # open brackets
    quote: str = ""  # the delimiter of a string open at the end of the previous line
    backslash: bool = False  # the previous line ended with a continuation backslash

    @property
    def at_start(self) -> bool:
        return not (self.depth or self.quote or self.backslash)

    def advance(self, line: str) -> _Lex:
        chars, quote = _code_chars(line, self.quote)
        depth = self.depth
        for _, char in chars:
            if char in "([{":
                depth += 1
            elif char in ")]}":
                depth = max(depth - 1, 0)
        if quote in ("'", '"') and not line.endswith("\\"):
            quote = ""  # an unterminated one-line string ends with its line (a syntax error)
        backslash = not quote and bool(chars) and chars[-1] == (len(line) - 1, "\\")
        return _Lex(depth, quote, backslash)


def _syntax_error(text: str) -> tuple[str, int] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like
            ast.parse(text)
    except SyntaxError as exc:
        return exc.msg, exc.lineno or 0
    except ValueError as exc:  # null bytes
        return str(exc), 0
    return None
