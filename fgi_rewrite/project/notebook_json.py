"""Read a Jupyter notebook's code cells and write new cell sources back, byte for byte elsewhere.

Neither ``nbformat`` nor ``json.dumps`` can write a notebook back unchanged: both re-serialize the
whole document (nbformat: ``indent=1``, sorted keys, every ``source`` split into a list of lines,
``metadata.trusted`` and ``signature`` dropped; black and nbQA: ``json.dumps(nb, indent=1,
ensure_ascii=False)``), so a notebook written with ``indent=2``, unsorted keys, ASCII escapes or a
``source`` string comes back reformatted. Here the JSON text is walked once with the standard
decoder (``raw_decode`` at each value, so all scanning is the C scanner's) keeping the span of
each code cell's ``source`` value; writing replaces those spans only, in the cell's own style (a
list of lines or one string, its indentation and separators, its ASCII escaping). Everything else
(cell ids, metadata, outputs, execution counts, key order, trailing newline, line endings) is the
original text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

BOM = "\ufeff"
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A ``\uXXXX`` escape of a non-ASCII character: the file was written with ensure_ascii=True.
# (No look-behind for an escaped backslash: it would make the search of megabytes of outputs slow.)
_ASCII_ESCAPE = re.compile(r"\\u(?:00[89a-fA-F]|0[1-9a-fA-F][0-9a-fA-F]|[1-9a-fA-F])")


class NotebookError(ValueError):
    """Bytes that are not a notebook this tool can read (invalid JSON, not nbformat 4)."""


@dataclass(frozen=True)
class CodeCell:
    """A code cell: its position in ``cells``, its source text and where that source is written."""

    index: int
    source: str
    span: tuple[int, int]  # the JSON value of "source" in Notebook.text
    items: tuple[tuple[int, int], ...] | None  # spans of the list's strings; None: one string
    language: str  # the cell's own language (VS Code's ``metadata.vscode.languageId``), or ""


@dataclass(frozen=True)
class Notebook:
    data: bytes  # the file as read
    text: str  # its JSON text, after a UTF-8 byte order mark if it has one
    bom: bool
    cells: tuple[CodeCell, ...]
    language: str  # the notebook's language (``language_info.name``/``kernelspec.language``)


def read_notebook(data: bytes) -> Notebook:
    """The code cells of a notebook; NotebookError with a readable reason for anything else."""
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    bom = decoded.startswith(BOM)
    text = decoded[1:] if bom else decoded
    try:
        return _read(data, text, bom)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"invalid JSON: {exc}") from exc


def _read(data: bytes, text: str, bom: bool) -> Notebook:
    top, end = _members(text, _skip(text, 0), nested={"cells": _cells})
    if _skip(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, _skip(text, end))
    version = top.get("nbformat", (None, 0, 0))[0]
    if "worksheets" in top or (isinstance(version, int) and version < 4):
        raise NotebookError(
            f"nbformat {version} notebook: only nbformat 4 is read (convert it with "
            "`jupyter nbconvert --to notebook --inplace`)"
        )
    cells = top.get("cells", (None, 0, 0))[0]
    if not isinstance(cells, list):
        raise NotebookError("not a notebook: no 'cells' list")
    code = []
    for index, members in enumerate(cells):
        if not isinstance(members, dict):
            raise NotebookError(f"not a notebook: cell {index} is not an object")
        if members.get("cell_type", (None,))[0] == "code":
            code.append(_code_cell(text, index, members))
    metadata = top.get("metadata", ({}, 0, 0))[0]
    return Notebook(data, text, bom, tuple(code), _notebook_language(metadata))


def _cells(text: str, pos: int) -> tuple[Any, int]:
    """The cells array, each object as its members with their spans (one decoding pass)."""
    if not text.startswith("[", pos):
        return _DECODER.raw_decode(text, pos)
    cells: list[object] = []
    pos = _skip(text, pos + 1)
    if text.startswith("]", pos):
        return cells, pos + 1
    while True:
        if text.startswith("{", pos):
            value, end = _members(text, pos)
        else:
            value, end = _DECODER.raw_decode(text, pos)
        cells.append(value)
        pos = _skip(text, end)
        if text.startswith("]", pos):
            return cells, pos + 1
        _expect(text, pos, ",")
        pos = _skip(text, pos + 1)


def _code_cell(text: str, index: int, members: dict[str, tuple[Any, int, int]]) -> CodeCell:
    if "source" not in members:
        raise NotebookError(f"not a notebook: code cell {index} has no 'source'")
    source, start, end = members["source"]
    items: tuple[tuple[int, int], ...] | None = None
    if isinstance(source, list) and all(isinstance(item, str) for item in source):
        items, source = tuple(_elements(text, start)), "".join(source)
    elif not isinstance(source, str):
        raise NotebookError(f"not a notebook: the source of cell {index} is not text")
    metadata = members.get("metadata", ({}, 0, 0))[0]
    vscode = metadata.get("vscode") if isinstance(metadata, dict) else None
    language = vscode.get("languageId", "") if isinstance(vscode, dict) else ""
    return CodeCell(index, source, (start, end), items, str(language))


def _notebook_language(metadata: object) -> str:
    if not isinstance(metadata, dict):
        return ""
    for key, field in (("language_info", "name"), ("kernelspec", "language")):
        section = metadata.get(key)
        if isinstance(section, dict) and isinstance(section.get(field), str):
            return str(section[field])
    return ""


# ---- the JSON walk -----------------------------------------------------------------------------


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _expect(text: str, pos: int, what: str) -> None:
    if not text.startswith(what, pos):
        raise json.JSONDecodeError(f"Expecting {what!r}", text, pos)


def _members(
    text: str, pos: int, nested: Mapping[str, Callable[[str, int], tuple[Any, int]]] | None = None
) -> tuple[dict[str, tuple[Any, int, int]], int]:
    """Key -> (value, start, end) of the object at ``pos`` (the last of duplicate keys, as
    ``json.loads``), and the object's end; ``nested`` reads the values of some keys."""
    _expect(text, pos, "{")
    members: dict[str, tuple[Any, int, int]] = {}
    pos = _skip(text, pos + 1)
    if text.startswith("}", pos):
        return members, pos + 1
    while True:
        _expect(text, pos, '"')
        key, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, pos)
        _expect(text, pos, ":")
        start = _skip(text, pos + 1)
        read = (nested or {}).get(key, _DECODER.raw_decode)
        value, end = read(text, start)
        members[key] = (value, start, end)
        pos = _skip(text, end)
        if text.startswith("}", pos):
            return members, pos + 1
        _expect(text, pos, ",")
        pos = _skip(text, pos + 1)


def _elements(text: str, pos: int) -> list[tuple[int, int]]:
    """Spans of the values of the array at ``pos``."""
    _expect(text, pos, "[")
    spans: list[tuple[int, int]] = []
    pos = _skip(text, pos + 1)
    if text.startswith("]", pos):
        return spans
    while True:
        _, end = _DECODER.raw_decode(text, pos)
        spans.append((pos, end))
        pos = _skip(text, end)
        if text.startswith("]", pos):
            return spans
        _expect(text, pos, ",")
        pos = _skip(text, pos + 1)


# ---- writing -----------------------------------------------------------------------------------


def with_sources(notebook: Notebook, sources: Mapping[int, str]) -> bytes:
    """The notebook with new sources for some code cells (by cell index); the file's own bytes
    when no source differs."""
    changed = [c for c in notebook.cells if sources.get(c.index, c.source) != c.source]
    if not changed:
        return notebook.data
    ascii_only = bool(_ASCII_ESCAPE.search(notebook.text))
    pieces, done = [BOM if notebook.bom else ""], 0
    for cell in sorted(changed, key=lambda c: c.span[0]):
        start, end = cell.span
        pieces += [
            notebook.text[done:start],
            _encode(notebook.text, cell, sources[cell.index], ascii_only),
        ]
        done = end
    pieces.append(notebook.text[done:])
    return "".join(pieces).encode("utf-8")


def _encode(text: str, cell: CodeCell, source: str, ascii_only: bool) -> str:
    if cell.items is None:
        return json.dumps(source, ensure_ascii=ascii_only)
    # An unchanged line keeps its original escaping; new lines are split as Jupyter splits them.
    written = {json.loads(text[s:e]): text[s:e] for s, e in cell.items}
    lines = [
        written.get(line) or json.dumps(line, ensure_ascii=ascii_only)
        for line in source.splitlines(keepends=True)
    ]
    if not lines:
        return "[]"
    opener, separator, closer = _list_layout(text, cell)
    return "[" + opener + separator.join(lines) + closer + "]"


def _list_layout(text: str, cell: CodeCell) -> tuple[str, str, str]:
    """The whitespace after ``[``, between two items (with the comma) and before ``]``."""
    assert cell.items is not None
    start, end = cell.span
    if cell.items:
        opener = text[start + 1 : cell.items[0][0]]
        closer = text[cell.items[-1][1] : end - 1]
    else:  # an empty list: indent one level deeper than the "source" key's line
        line_start = text.rfind("\n", 0, start) + 1
        indent = text[line_start : _skip(text, line_start)].replace("\n", "").replace("\r", "")
        newline = "\r\n" if text[line_start - 2 : line_start] == "\r\n" else "\n"
        first_key = _skip(text, text.find("{") + 1)
        unit = text[text.rfind("\n", 0, first_key) + 1 : first_key]
        opener, closer = (newline + indent + unit, newline + indent) if line_start else ("", "")
    if len(cell.items) > 1:
        separator = text[cell.items[0][1] : cell.items[1][0]]
    elif "\n" in opener:
        separator = "," + opener
    else:  # a compact file: json.dumps's default separators, or minified ones
        separator = ", " if '": ' in text else ","
    return opener, separator, closer
