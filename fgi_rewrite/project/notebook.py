"""A Jupyter notebook as one Python module: its code cells in order, IPython syntax masked.

The project index reads a notebook as the module ``build_module`` gives (a Function defined in
cell 3 and applied in cell 7 resolves as in one file); the rewritten module goes back into the
notebook with ``rewrite_notebook``, which changes only the ``source`` of the cells whose text
changed (``notebook_json`` keeps every other byte).

IPython syntax is masked cell by cell (``ipython_syntax``). Cells that are not Python (other cell
magics, cells VS Code marks with another language, notebooks whose kernel is not Python) are left
out as ``SkippedCell``; so is a Python cell that does not parse, reported (FGI901).

Cells are separated in the module by a string statement before each cell but the first
(``"__fgi_nb_cell_7__"``): a statement, not a comment, so that no rewrite moves it (comments ride
with the statement below them, which a rewrite may replace or drop). What a rewrite inserts before
a cell's first statement stays in that cell; what it inserts at the module top (``import torch``
when the notebook has no import) goes to the first cell, and after a cell's last import, to that
cell.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fgi_rewrite.project.ipython_syntax import Mask, mask_cell, reindent, split_lines
from fgi_rewrite.project.notebook_json import (
    CodeCell,
    Notebook,
    NotebookError,
    read_notebook,
    with_sources,
)

# Cell magics whose body is Python run in the kernel's namespace (black's list, less the ones
# that start another interpreter: python, python2, python3, pypy).
PYTHON_LANGUAGES = frozenset({"python", "python3", "ipython", "ipython3"})
SUFFIX = ".ipynb"


def is_notebook(path: Path) -> bool:
    return path.suffix == SUFFIX


@dataclass(frozen=True)
class ModuleCell:
    index: int  # in the notebook's ``cells``
    masks: tuple[Mask, ...]
    first_line: int  # its first line in the module (1-based)
    cell_lines: tuple[int, ...]  # the cell's line of each of its module lines
    indent: str = ""


@dataclass(frozen=True)
class SkippedCell:
    index: int
    reason: str
    unparsable: bool  # Python that does not parse (report it: FGI901); else another language
    line: int = 1  # of the cell, where it does not parse


@dataclass(frozen=True)
class NotebookModule:
    notebook: Notebook
    source: str
    cells: tuple[ModuleCell, ...]
    skipped: tuple[SkippedCell, ...]
    prefix: str  # of every mask token and cell separator: ``__fgi_nb_`` unless the text has it


@dataclass(frozen=True)
class CellPosition:
    cell: int
    line: int
    column: int


# ---- the module --------------------------------------------------------------------------------


def build_module(
    notebook: Notebook, exclude: Mapping[int, tuple[str, int]] | None = None
) -> NotebookModule:
    """One module of the notebook's Python code cells. A cell that does not parse once masked
    (or that ``exclude`` names, with the reason and the cell's line: libcst refused it) is left
    out and listed in ``skipped``; so are cells in other languages. Empty cells are left out
    silently."""
    prefix = _prefix(notebook)
    tokens = itertools.count()
    parts: list[str] = []
    cells: list[ModuleCell] = []
    skipped: list[SkippedCell] = []
    line = 1
    for cell in notebook.cells:
        if not cell.source.strip():
            continue
        other = _other_language(notebook, cell)
        masked = mask_cell(cell.source, prefix, tokens) if other is None else other
        if isinstance(masked, str):
            skipped.append(SkippedCell(cell.index, masked, False))
            continue
        if cell.index in (exclude or {}) or masked.problem is not None:
            reason, where = (exclude or {}).get(cell.index, (masked.problem, masked.problem_line))
            skipped.append(SkippedCell(cell.index, str(reason), True, where))
            continue
        if cells:
            parts.append(f'"{prefix}cell_{cell.index}__"\n')
            line += 1
        parts.append(masked.text if masked.text.endswith(("\n", "\r")) else masked.text + "\n")
        cells.append(ModuleCell(cell.index, masked.masks, line, masked.cell_lines, masked.indent))
        line += len(masked.cell_lines)
    return NotebookModule(notebook, "".join(parts), tuple(cells), tuple(skipped), prefix)


def _prefix(notebook: Notebook) -> str:
    """``__fgi_nb_``, or ``__fgi_nb2_``... when a cell already contains it."""
    code = "\n".join(cell.source for cell in notebook.cells)
    for n in itertools.count(1):
        prefix = f"__fgi_nb{n if n > 1 else ''}_"
        if prefix not in code:
            return prefix
    raise AssertionError("unreachable")


def _other_language(notebook: Notebook, cell: CodeCell) -> str | None:
    if notebook.language and notebook.language.lower() not in PYTHON_LANGUAGES:
        return f"{notebook.language} notebook"
    if cell.language and cell.language.lower() not in PYTHON_LANGUAGES:
        return f"{cell.language} cell"
    return None


def split_module(module: NotebookModule, rewritten: str) -> dict[int, str]:
    """The new source of each cell of the module, from the rewritten module, magics restored;
    NotebookError when the rewrite lost a cell boundary or a magic."""
    separator = re.compile(rf'"{re.escape(module.prefix)}cell_(\d+)__"(?:\r\n|\r|\n)?')
    if not module.cells:
        if rewritten != module.source:
            raise NotebookError("the rewrite added code to a notebook without Python cells")
        return {}
    chunks: dict[int, list[str]] = {module.cells[0].index: []}
    current, order = module.cells[0].index, []
    for line in split_lines(rewritten):
        match = separator.fullmatch(line)
        if match:
            current = int(match.group(1))
            order.append(current)
            chunks[current] = []
        else:
            chunks[current].append(line)
    if order != [cell.index for cell in module.cells[1:]]:
        raise NotebookError("the rewrite moved or removed a boundary between cells")
    originals = {cell.index: cell.source for cell in module.notebook.cells}
    sources = {}
    for cell in module.cells:
        text, original = "".join(chunks[cell.index]), originals[cell.index]
        if not original.endswith(("\n", "\r")):
            text = re.sub(r"(\r\n|\r|\n)\Z", "", text)  # the newline the module added
        for mask in cell.masks:
            if text.count(mask.token) != 1:
                raise NotebookError(f"the rewrite changed the magic {mask.original!r}")
        if cell.masks and original.lstrip().startswith(cell.masks[0].original):
            text = _header_first(text, cell.masks[0])
        for mask in cell.masks:
            text = text.replace(mask.token, mask.original)
        sources[cell.index] = reindent(text, original, cell.indent) if cell.indent else text
    return sources


def _header_first(text: str, header: Mask) -> str:
    """A cell magic must stay the cell's first line: code a rewrite put above it (``import
    torch`` at the top of the module) goes right below it, still inside the cell."""
    if not header.original.startswith("%%"):
        return text
    lines = split_lines(text)
    at = next(i for i, line in enumerate(lines) if header.token in line)
    blank = [line for line in lines[:at] if not line.strip()]
    moved = [line for line in lines[:at] if line.strip()]
    return "".join([*blank, lines[at], *moved, *lines[at + 1 :]])


def rewrite_notebook(module: NotebookModule, rewritten: str) -> bytes:
    """The notebook's bytes with the rewritten module's cells: only the ``source`` of cells whose
    text changed differs; the original bytes when none did."""
    return with_sources(module.notebook, split_module(module, rewritten))


# ---- reports -----------------------------------------------------------------------------------


def locate(module: NotebookModule, line: int, column: int = 1) -> CellPosition | None:
    """The cell, line and column of a module position (None on a cell separator)."""
    for cell in module.cells:
        if cell.first_line <= line < cell.first_line + len(cell.cell_lines):
            cell_line = cell.cell_lines[line - cell.first_line]
            return CellPosition(cell.index, cell_line, column + len(cell.indent))
    return None


def cell_diff(label: str, before: bytes, after: bytes) -> str:
    """A unified diff per changed code cell, each headed ``<label>:cell_<index>`` (the index in
    the notebook's cells, as black's ``--diff`` names them)."""
    old = {cell.index: cell.source for cell in read_notebook(before).cells}
    new = {cell.index: cell.source for cell in read_notebook(after).cells}
    out: list[str] = []
    for index in sorted(old.keys() & new.keys()):
        if old[index] == new[index]:
            continue
        name = f"{label}:cell_{index}"
        lines = difflib.unified_diff(
            _diff_lines(old[index]),
            _diff_lines(new[index]),
            f"{name}\t(original)",
            f"{name}\t(rewritten)",
        )
        out.extend(lines)
    return "".join(out)


def _diff_lines(source: str) -> list[str]:
    # Cells rarely end with a newline; like black, compare them as if they all did.
    return (source if source.endswith("\n") or not source else source + "\n").splitlines(True)


def runnable_source(module: NotebookModule) -> str:
    """The module with every magic replaced by ``None``: plain Python that runs the notebook's
    code cells in order (for tests that run a notebook before and after a rewrite)."""
    return re.sub(rf"{re.escape(module.prefix)}magic_\d+__", "None", module.source)


def magics(module: NotebookModule) -> list[tuple[CellPosition, str]]:
    """Each masked magic with its place in its cell: what a magic runs (``%timeit Fn.apply(x)``)
    is not rewritten, so a caller reports the ones that name a surrogate."""
    originals = {mask.token: mask.original for cell in module.cells for mask in cell.masks}
    token = re.compile(rf"{re.escape(module.prefix)}magic_\d+__")
    found = []
    for number, line in enumerate(split_lines(module.source), 1):
        for match in token.finditer(line):
            position = locate(module, number, match.start() + 1)
            if position is not None and match.group() in originals:
                found.append((position, originals[match.group()]))
    return found


def hidden_code(module: NotebookModule) -> str:
    """The code the module does not show (masked magics, skipped cells): ``%timeit Fn.apply(x)``
    still names ``Fn``, so a pass that removes unused definitions must count it."""
    masked = [mask.original for cell in module.cells for mask in cell.masks]
    by_index = {cell.index: cell.source for cell in module.notebook.cells}
    return "\n".join([*masked, *(by_index[cell.index] for cell in module.skipped)])
