"""Notebooks as modules (project/notebook.py, ipython_syntax.py, notebook_json.py): reading, IPython
masking, one module per notebook with a cell map, writing back byte for byte except the changed
cells' source.

The notebooks are in tests/notebooks/: ``surrogate_cells.ipynb`` as Jupyter writes it (nbformat:
indent 1, sorted keys, a PNG output, magics, a ``%%time`` cell, a syntax error, ``%%bash``, an
empty cell), ``two_space_strings.ipynb`` as another writer might (indent 2, keys unsorted, each
``source`` one string, ASCII escapes, no final newline, a VS Code SQL cell, a Function imported
from a project module) and ``r_kernel.ipynb`` (an R notebook).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fgi_rewrite.core.codes import Severity
from fgi_rewrite.pipeline.run import Options, run
from fgi_rewrite.project.ipython_syntax import MaskedCell, mask_cell
from fgi_rewrite.project.notebook import (
    CellPosition,
    NotebookModule,
    build_module,
    cell_diff,
    hidden_code,
    locate,
    magics,
    rewrite_notebook,
    runnable_source,
    split_module,
)
from fgi_rewrite.project.notebook_json import NotebookError, read_notebook, with_sources
from fgi_rewrite.rewrite.cleanup import removable_names
from fgi_rewrite.rewrite.module_edits import ensure_imports

NOTEBOOKS = Path(__file__).parent / "notebooks"
JUPYTER = NOTEBOOKS / "surrogate_cells.ipynb"
OTHER_WRITER = NOTEBOOKS / "two_space_strings.ipynb"
R_KERNEL = NOTEBOOKS / "r_kernel.ipynb"

# A surrogate in a project module, imported by two_space_strings.ipynb.
SPIKES_MODULE = """\
import torch


class HeavisideBoxcar(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v >= 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        return grad_output * (v.abs() < 0.5).float()
"""


def module_of(path: Path) -> NotebookModule:
    return build_module(read_notebook(path.read_bytes()))


def sources(data: bytes) -> dict[int, str]:
    return {cell.index: cell.source for cell in read_notebook(data).cells}


def outside_sources(data: bytes) -> Any:
    """The notebook's JSON with every code cell's source blanked: what must never change."""
    notebook = json.loads(data)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["source"] = None
    return notebook


def rewrite_module(tmp_path: Path, module: NotebookModule, style: str = "inline") -> str:
    """The real rewrite of the notebook's module source (as a file of a project in tmp_path)."""
    path = tmp_path / "notebook_module.py"
    path.write_text(module.source, encoding="utf-8")
    report = run([path], Options(verify="none", diff=True, style=style))
    problems = [
        d for d in report.diagnostics if d.code.severity in (Severity.REFUSAL, Severity.ERROR)
    ]
    assert not problems, [d.render() for d in problems]
    return report.results[0].after.decode("utf-8") if report.results else module.source


# ---- reading -----------------------------------------------------------------------------------


def test_code_cells_are_read_with_their_index_in_the_notebook() -> None:
    notebook = read_notebook(JUPYTER.read_bytes())
    assert [cell.index for cell in notebook.cells] == [1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert notebook.language == "python"
    assert notebook.cells[0].source.startswith("%matplotlib inline\n!pip install")
    other = read_notebook(OTHER_WRITER.read_bytes())
    assert [(c.index, c.language, c.items) for c in other.cells][1] == (1, "sql", None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "invalid JSON"),
        (b'{"cells": [}', "invalid JSON"),
        (b'{"cells": []} trailing', "Extra data"),
        (b"[1, 2]", "invalid JSON: Expecting '{'"),
        (b'{"metadata": {}}', "no 'cells' list"),
        (b'{"cells": 3}', "no 'cells' list"),
        (b'{"cells": [3]}', "cell 0 is not an object"),
        (b'{"cells": [{"cell_type": "code"}]}', "code cell 0 has no 'source'"),
        (b'{"cells": [{"cell_type": "code", "source": [1]}]}', "source of cell 0 is not text"),
        (b'{"nbformat": 3, "worksheets": [{"cells": []}]}', "nbformat 3 notebook"),
        (b'{"cells": [], "x": "\xff"}', "not UTF-8"),
    ],
)
def test_what_is_not_a_notebook_gets_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(NotebookError, match=message):
        read_notebook(data)


def test_a_byte_order_mark_is_kept() -> None:
    data = b"\xef\xbb\xbf" + OTHER_WRITER.read_bytes()
    module = build_module(read_notebook(data))
    assert rewrite_notebook(module, module.source) == data
    new = rewrite_notebook(module, module.source.replace("theta = 0.5", "theta = 0.25"))
    assert new.startswith(b"\xef\xbb\xbf") and b"theta = 0.25" in new


# ---- byte for byte -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [JUPYTER, OTHER_WRITER, R_KERNEL], ids=lambda p: p.stem)
def test_a_notebook_without_change_is_the_same_bytes(path: Path) -> None:
    module = module_of(path)
    assert rewrite_notebook(module, module.source) == path.read_bytes()


def nbformat_style(data: bytes) -> bytes:
    """What nbformat's writer (nbformat/v4/nbjson.py) makes of a notebook: lists of lines for
    every source, keys sorted, indent 1, no ASCII escapes; black and nbQA dump the same way
    (without sorting)."""
    notebook = json.loads(data)
    for cell in notebook["cells"]:
        if isinstance(cell["source"], str):
            cell["source"] = cell["source"].splitlines(True)
    return json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False).encode() + b"\n"


def test_the_splice_keeps_what_re_serializing_would_reformat() -> None:
    data = OTHER_WRITER.read_bytes()
    assert nbformat_style(data) != data  # indent 2, unsorted keys, strings, ASCII escapes
    module = build_module(read_notebook(data))
    rewritten = module.source.replace("z = HeavisideBoxcar.apply(v - theta)", "z = (v >= theta)")
    new = rewrite_notebook(module, rewritten)
    (changed,) = [c for c in read_notebook(data).cells if c.index == 2]
    start, end = changed.span
    text, new_text = data.decode(), new.decode()
    assert new_text[:start] == text[:start]
    assert new_text[len(new_text) - (len(text) - end) :] == text[end:]
    assert outside_sources(new) == outside_sources(data)
    value = new_text[start : len(new_text) - (len(text) - end)]
    # Still one string, still ASCII-escaped (the θ of the comment line).
    assert value == json.dumps(sources(new)[2], ensure_ascii=True)
    assert "\\u03b8" in value and not new.endswith(b"\n")


def test_nbformat_itself_reformats_the_notebook() -> None:
    nbformat = pytest.importorskip("nbformat")
    text = OTHER_WRITER.read_text(encoding="utf-8")
    assert nbformat.writes(nbformat.reads(text, as_version=4)) != text
    # The Jupyter-style notebook is exactly what nbformat writes (nbformat.write adds the "\n").
    jupyter = JUPYTER.read_text(encoding="utf-8")
    assert nbformat.writes(nbformat.reads(jupyter, as_version=4)) + "\n" == jupyter


def test_a_changed_list_source_keeps_its_unchanged_lines_and_the_layout() -> None:
    data = JUPYTER.read_bytes()
    notebook = read_notebook(data)
    cell = next(c for c in notebook.cells if c.index == 6)
    new_source = cell.source.replace("plt.plot", "plt.figure()\nplt.plot")
    new = with_sources(notebook, {6: new_source})
    assert outside_sources(new) == outside_sources(data)
    assert json.loads(new)["cells"][6]["source"] == [
        "plt.figure()\n",
        "plt.plot(ramp.detach(), ramp.grad)\n",
        'plt.title("surrogate gradient θ");',
    ]
    expected = data.decode().replace(
        '"source": [\n    "plt.plot', '"source": [\n    "plt.figure()\\n",\n    "plt.plot'
    )
    assert new.decode() == expected


@pytest.mark.parametrize(
    "dump",
    [
        lambda nb: json.dumps(nb),
        lambda nb: json.dumps(nb, separators=(",", ":")),
        lambda nb: json.dumps(nb, indent=1).replace("\n", "\r\n") + "\r\n",
        lambda nb: json.dumps(nb, indent="\t", ensure_ascii=False),
    ],
    ids=["compact", "minified", "crlf", "tabs"],
)
def test_other_layouts_are_kept_when_a_cell_changes(dump: Any) -> None:
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    notebook = {
        "cells": [
            {**cell, "source": ["x = 1\n", "y = 2"]},
            {**cell, "source": ["z = 3"]},
            {**cell, "source": []},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    data = dump(notebook).encode()
    parsed = read_notebook(data)
    new = with_sources(parsed, {0: "x = 1\nw = 0\ny = 2", 1: "z = 3\nq = 4", 2: "e = 5\nf = 6"})
    expected = copy.deepcopy(notebook)
    expected["cells"][0]["source"] = ["x = 1\n", "w = 0\n", "y = 2"]
    expected["cells"][1]["source"] = ["z = 3\n", "q = 4"]
    expected["cells"][2]["source"] = ["e = 5\n", "f = 6"]
    assert new == dump(expected).encode()
    expected["cells"][0]["source"] = []
    assert with_sources(read_notebook(new), {0: "", 1: "z = 3\nq = 4"}) == dump(expected).encode()


# ---- masking -----------------------------------------------------------------------------------

MASKED = [
    ("%matplotlib inline\nimport torch\n", "{0}\nimport torch\n", ["%matplotlib inline"]),
    ("!pip install torch --quiet", "{0}", ["!pip install torch --quiet"]),
    ("x = 1\nx?\n", "x = 1\n{0}\n", ["x?"]),
    ("??torch.sigmoid\n", "{0}\n", ["??torch.sigmoid"]),
    ("torch.nn.functional.relu??\n", "{0}\n", ["torch.nn.functional.relu??"]),
    ("%timeit?\n", "{0}\n", ["%timeit?"]),
    ("files = !ls -l\n", "files = {0}\n", ["!ls -l"]),
    ("env: str = %env HOME\n", "env: str = {0}\n", ["%env HOME"]),
    ("for i in range(2):\n    !echo $i\n", "for i in range(2):\n    {0}\n", ["!echo $i"]),
    ("%%time\ny = f(x)\n", "{0}\ny = f(x)\n", ["%%time"]),
    ("\n%%timeit -n 10 x = 1\ny = x\n", "\n{0}\ny = x\n", ["%%timeit -n 10 x = 1"]),
    ("%%capture out\n%load_ext foo\n", "{0}\n{1}\n", ["%%capture out", "%load_ext foo"]),
    ("%time y = \\\n    f(x)\nz = 1\n", "{0}\nz = 1\n", ["%time y = \\\n    f(x)"]),
    ('s = """\n%not a magic\n"""\n%who\n', 's = """\n%not a magic\n"""\n{0}\n', ["%who"]),
    ("y = (a\n     % b)\n!ls\n", "y = (a\n     % b)\n{0}\n", ["!ls"]),
    ("y = a \\\n    % b\n!ls\n", "y = a \\\n    % b\n{0}\n", ["!ls"]),
    ("if x != 1:\n    pass\n!ls\n", "if x != 1:\n    pass\n{0}\n", ["!ls"]),
    ("d = {'a': 1}  # %x\n!ls\n", "d = {{'a': 1}}  # %x\n{0}\n", ["!ls"]),
    ("%ls\r\nx = 1\r\n", "{0}\r\nx = 1\r\n", ["%ls"]),
    ("# what?\nresult = str.split??\n", "# what?\n{0}\n", ["result = str.split??"]),
    ("x = 'why?'  # really?\n!ls\n", "x = 'why?'  # really?\n{0}\n", ["!ls"]),
]


@pytest.mark.parametrize(("source", "masked", "originals"), MASKED)
def test_ipython_syntax_is_masked_and_restored_byte_for_byte(
    source: str, masked: str, originals: list[str]
) -> None:
    result = mask_cell(source)
    assert isinstance(result, MaskedCell) and result.problem is None
    tokens = [mask.token for mask in result.masks]
    assert result.text == masked.format(*tokens)
    assert [mask.original for mask in result.masks] == originals
    restored = result.text
    for mask in result.masks:
        restored = restored.replace(mask.token, mask.original)
    assert restored == source


@pytest.mark.parametrize(("source", "masked", "originals"), MASKED)
def test_the_masked_lines_are_the_ones_ipython_transforms(
    source: str, masked: str, originals: list[str]
) -> None:
    inputtransformer2 = pytest.importorskip("IPython.core.inputtransformer2")
    ipython = inputtransformer2.TransformerManager().transform_cell(source)
    result = mask_cell(source)
    assert isinstance(result, MaskedCell)
    # IPython makes the cell magic one call of the whole cell: compare its header line alone.
    if "run_cell_magic" in ipython:
        assert source.lstrip("\n").startswith(originals[0]) and originals[0].startswith("%%")
        return
    ours = {n for n, line in enumerate(result.text.splitlines()) if "__fgi_nb_magic_" in line}
    theirs = {n for n, line in enumerate(ipython.splitlines()) if "get_ipython()" in line}
    assert ours == theirs


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("%%bash\necho hi\n", "%%bash cell"),
        ("%%writefile model.py\nimport torch\n", "%%writefile cell"),
        ("%%python3\nprint(1)\n", "%%python3 cell"),
        ("\n%%javascript\nalert(1)", "%%javascript cell"),
    ],
)
def test_cells_in_other_languages_are_not_python(source: str, reason: str) -> None:
    assert mask_cell(source) == reason


@pytest.mark.parametrize(
    "source",
    [
        "/print 1 2\n",  # autocall: hides a call, so it is not masked
        ",f a b\n",
        "def f(x:\n    return x\n",
        "x = 1\n  y = 2\n",
        "%%time\ndef f(:\n",
        "print 'python 2'\n",
        "f(x)?\n",  # IPython too: help needs a name
    ],
)
def test_a_cell_that_does_not_parse_says_why(source: str) -> None:
    result = mask_cell(source)
    assert isinstance(result, MaskedCell) and result.problem is not None
    assert result.problem.startswith("cannot parse: ")


def test_the_syntax_error_line_is_the_cells_line() -> None:
    result = mask_cell("%time a = \\\n   1\n!ls\ndef f(:\n")
    assert isinstance(result, MaskedCell) and result.problem is not None
    assert result.problem.endswith("(line 4)") and result.problem_line == 4


def test_a_cell_indented_as_a_whole_is_dedented_as_ipython_does() -> None:
    source = "    %time x = 1\n      \n    y = Fn.apply(x)\n"
    result = mask_cell(source)
    assert isinstance(result, MaskedCell) and result.problem is None
    assert result.indent == "    "
    assert result.text == f"{result.masks[0].token}\n\ny = Fn.apply(x)\n"
    module = build_module(read_notebook(notebook_bytes([source])))
    assert locate(module, 3, 5) == CellPosition(0, 3, 9)
    rewritten = module.source.replace("y = Fn.apply(x)", "if x:\n    pass\ny = f(x)")
    assert split_module(module, rewritten) == {
        0: "    %time x = 1\n      \n    if x:\n        pass\n    y = f(x)\n"
    }
    assert rewrite_notebook(module, module.source) == notebook_bytes([source])


# ---- the module --------------------------------------------------------------------------------


def test_the_module_holds_the_python_cells_in_order() -> None:
    module = module_of(JUPYTER)
    tree = cst.parse_module(module.source)  # libcst reads it
    assert [c.index for c in module.cells] == [1, 2, 4, 5, 6, 9]
    assert [(s.index, s.reason, s.unparsable, s.line) for s in module.skipped] == [
        (7, "cannot parse: '(' was never closed (line 1)", True, 1),
        (8, "%%bash cell", False, 1),
    ]
    assert "class FastSigmoidSpike" in module.source
    assert module.source.count("FastSigmoidSpike.apply(") == 2  # cells 4 and 9, not 7 nor 8
    assert sum(isinstance(s, cst.ClassDef) for s in tree.body) == 1
    # A separator before each cell but the first; cell 10 is empty and left out.
    separators = [line for line in module.source.splitlines() if line.startswith('"__fgi_nb_')]
    assert separators == [f'"__fgi_nb_cell_{i}__"' for i in (2, 4, 5, 6, 9)]


def test_module_positions_map_to_cells() -> None:
    module = module_of(JUPYTER)
    lines = module.source.splitlines()
    call = next(n for n, line in enumerate(lines, 1) if "return FastSigmoidSpike.apply" in line)
    assert locate(module, call, 12) == CellPosition(9, 3, 12)
    timed = next(n for n, line in enumerate(lines, 1) if "spikes = FastSigmoidSpike" in line)
    assert locate(module, timed) == CellPosition(4, 3, 1)
    assert locate(module, 1) == CellPosition(1, 1, 1)
    assert locate(module, lines.index('"__fgi_nb_cell_9__"') + 1) is None
    assert locate(module, len(lines) + 5) is None


def test_a_multi_line_magic_shifts_the_cell_lines_after_it() -> None:
    data = notebook_bytes(["%time y = \\\n    1 + \\\n    2\nz = Fn.apply(y)\n"])
    module = build_module(read_notebook(data))
    assert module.source == "__fgi_nb_magic_0__\nz = Fn.apply(y)\n"
    assert locate(module, 2, 5) == CellPosition(0, 4, 5)


def notebook_bytes(cells: list[str], metadata: dict[str, Any] | None = None) -> bytes:
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "outputs": [], "source": s.splitlines(True)}
            for s in cells
        ],
        "metadata": metadata or {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1).encode()


def test_other_languages_are_left_out() -> None:
    assert [s.reason for s in module_of(R_KERNEL).skipped] == ["R notebook"]
    assert module_of(R_KERNEL).source == ""
    other = module_of(OTHER_WRITER)
    assert [(s.index, s.reason) for s in other.skipped] == [(1, "sql cell")]
    assert "SELECT" not in other.source


def test_a_cell_libcst_refuses_can_be_excluded_by_the_caller() -> None:
    notebook = read_notebook(JUPYTER.read_bytes())
    module = build_module(notebook, exclude={4: ("cannot parse: libcst's reason", 3)})
    assert (4, "cannot parse: libcst's reason", True, 3) in [
        (s.index, s.reason, s.unparsable, s.line) for s in module.skipped
    ]
    assert "spikes = FastSigmoidSpike.apply(ramp)" not in module.source
    assert rewrite_notebook(module, module.source) == notebook.data


def test_tokens_never_clash_with_the_notebooks_own_text() -> None:
    data = notebook_bytes(["%ls\n__fgi_nb_magic_0__ = 1\n", "y = __fgi_nb_magic_0__\n"])
    module = build_module(read_notebook(data))
    assert module.prefix == "__fgi_nb2_"
    assert module.source.startswith("__fgi_nb2_magic_0__\n__fgi_nb_magic_0__ = 1\n")
    assert rewrite_notebook(module, module.source) == data


# Lines that make cells of every kind: Python, magics, strings and brackets spanning lines
# (where a magic-looking line is no magic), syntax errors, other endings.
PIECES = [
    "x = 1\n",
    "%matplotlib inline\n",
    "!pip install torch\n",
    "files = !ls\n",
    "torch.sigmoid?\n",
    "%time y = \\\n    2\n",
    "def f(a):\n    return Fn.apply(a)\n",
    "if x:\n    !echo $x\n",
    's = """\n%not a magic\n"""\n',
    "z = (x\n     % 2)\n",
    "# a comment %x\n",
    "\n",
    "y = f(x);\n",
    "def broken(:\n",
    "w = 2\r\n",
    "q = 3",
]
cell_sources = st.builds(
    lambda magic, pieces, indent: "".join(
        indent + line if line.strip() else line
        for line in (magic + "".join(pieces)).splitlines(True)
    ),
    st.sampled_from(["", "%%time\n", "%%bash\n", "\n%%capture out\n"]),
    st.lists(st.sampled_from(PIECES), max_size=5),
    st.sampled_from(["", "", "  "]),  # IPython dedents a cell indented as a whole
)


def any_notebook(cells: list[tuple[str, bool]]) -> bytes:
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "source": source.splitlines(True) if as_list else source,
            }
            for source, as_list in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1).encode()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(cell_sources, st.booleans()), max_size=6), st.data())
def test_any_notebook_round_trips_and_an_insertion_changes_one_cell(
    cells: list[tuple[str, bool]], data: st.DataObject
) -> None:
    raw = any_notebook(cells)
    module = build_module(read_notebook(raw))
    assert rewrite_notebook(module, module.source) == raw
    if not module.cells:
        return
    tree = cst.parse_module(module.source)
    at = data.draw(st.integers(0, len(tree.body)), label="insert before statement")
    body = [*tree.body[:at], cst.parse_statement("_inserted = 0\n"), *tree.body[at:]]
    new = sources(rewrite_notebook(module, tree.with_changes(body=body).code))
    old = sources(raw)
    (changed,) = [i for i in old if old[i] != new[i]]
    lines = new[changed].splitlines(True)
    position = next(n for n, line in enumerate(lines) if line.strip() == "_inserted = 0")
    del lines[position]
    if position == len(lines) and not old[changed].endswith("\n"):
        lines[-1] = lines[-1].rstrip("\n")
    assert "".join(lines) == old[changed]


# ---- writing back ------------------------------------------------------------------------------


def test_inserted_lines_and_an_import_at_the_top_change_only_their_cells() -> None:
    module = module_of(JUPYTER)
    rewritten = "import math\n" + module.source.replace(
        "spikes = FastSigmoidSpike.apply(ramp)\n",
        "_fgi_d = ramp.detach()\nspikes = (ramp > 0).float()\n",
    )
    new = rewrite_notebook(module, rewritten)
    old_sources, new_sources = sources(JUPYTER.read_bytes()), sources(new)
    changed = {i for i in old_sources if old_sources[i] != new_sources[i]}
    assert changed == {1, 4}
    assert new_sources[1] == "import math\n" + old_sources[1]  # the magics are back
    assert new_sources[4].startswith("%%time\n") and "_fgi_d = ramp.detach()\n" in new_sources[4]
    assert outside_sources(new) == outside_sources(JUPYTER.read_bytes())  # outputs, PNG, ids...


def test_an_import_added_with_libcst_lands_after_the_last_import() -> None:
    module = module_of(JUPYTER)
    tree = ensure_imports(cst.parse_module(module.source), ["math"])
    new = sources(rewrite_notebook(module, tree.code))
    assert new[1].endswith("import matplotlib.pyplot as plt\nimport math")  # no final newline
    no_imports = build_module(read_notebook(notebook_bytes(["%ls\nx = 1\n", "y = 2\n"])))
    tree = ensure_imports(cst.parse_module(no_imports.source), ["torch"])
    assert split_module(no_imports, tree.code) == {0: "import torch\n%ls\nx = 1\n", 1: "y = 2\n"}


def test_a_cell_magic_stays_the_first_line_of_its_cell() -> None:
    module = build_module(read_notebook(notebook_bytes(["%%time\nx = 1\n", "y = 2\n"])))
    tree = ensure_imports(cst.parse_module(module.source), ["torch"])
    assert tree.code.startswith("import torch\n__fgi_nb_magic_0__\n")
    assert split_module(module, tree.code)[0] == "%%time\nimport torch\nx = 1\n"


def test_a_cell_keeps_its_final_newline_or_its_absence() -> None:
    module = build_module(read_notebook(notebook_bytes(["a = 1", "b = 2\n"])))
    assert module.source == 'a = 1\n"__fgi_nb_cell_1__"\nb = 2\n'
    rewritten = module.source.replace("a = 1\n", "a = 1\na2 = 1\n").replace("b = 2", "b = 3")
    assert split_module(module, rewritten) == {0: "a = 1\na2 = 1", 1: "b = 3\n"}


def test_a_lost_cell_boundary_or_magic_is_an_error_not_a_wrong_notebook() -> None:
    module = module_of(JUPYTER)
    with pytest.raises(NotebookError, match="boundary"):
        split_module(module, module.source.replace('"__fgi_nb_cell_4__"\n', ""))
    swapped = module.source.replace("cell_4__", "cell_X__").replace("cell_5__", "cell_4__")
    with pytest.raises(NotebookError, match="boundary"):
        split_module(module, swapped.replace("cell_X__", "cell_5__"))
    with pytest.raises(NotebookError, match="magic '%%time'"):
        split_module(module, module.source.replace("__fgi_nb_magic_2__\n", ""))


def test_the_real_rewrite_changes_only_the_cells_with_call_sites(tmp_path: Path) -> None:
    module = module_of(JUPYTER)
    new = rewrite_notebook(module, rewrite_module(tmp_path, module))
    old_sources, new_sources = sources(JUPYTER.read_bytes()), sources(new)
    assert {i for i in old_sources if old_sources[i] != new_sources[i]} == {4, 9}
    assert "FastSigmoidSpike.apply" not in new_sources[4] + new_sources[9]
    assert new_sources[4].startswith("%%time\n") and "files = !ls\n" in new_sources[9]
    assert outside_sources(new) == outside_sources(JUPYTER.read_bytes())
    again = build_module(read_notebook(new))  # a second run changes nothing
    assert rewrite_notebook(again, rewrite_module(tmp_path, again)) == new


def test_a_generated_function_lands_after_the_class_in_its_cell(tmp_path: Path) -> None:
    module = module_of(JUPYTER)
    new = sources(rewrite_notebook(module, rewrite_module(tmp_path, module, "function")))
    assert new[2].startswith(sources(JUPYTER.read_bytes())[2] + "\n\n\ndef fast_sigmoid_spike")
    assert not new[2].endswith("\n")
    assert "fast_sigmoid_spike_fgi(ramp" in new[4] and "fast_sigmoid_spike_fgi(membrane" in new[9]


def test_a_function_imported_from_a_project_module_is_rewritten(tmp_path: Path) -> None:
    (tmp_path / "spikes.py").write_text(SPIKES_MODULE)
    module = module_of(OTHER_WRITER)
    new = rewrite_notebook(module, rewrite_module(tmp_path, module))
    new_sources = sources(new)
    assert "HeavisideBoxcar.apply" not in new_sources[2]
    assert new_sources[2].startswith("# Schwellwert θ (threshold)\ntheta = 0.5\n")
    assert json.loads(new)["cells"][2]["source"] == new_sources[2]  # still one string
    assert outside_sources(new) == outside_sources(OTHER_WRITER.read_bytes())


RESULTS = """
import json, sys
json.dump({"spikes": spikes.tolist(), "grad": ramp.grad.tolist(), "out": out.tolist()},
          sys.stdout)
"""


def run_cells(source: str, tmp_path: Path) -> Any:
    script = tmp_path / "cells.py"
    script.write_text(source + RESULTS, encoding="utf-8")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_rewritten_cells_run_to_the_same_values_and_gradients(tmp_path: Path) -> None:
    module = module_of(JUPYTER)
    after = build_module(read_notebook(rewrite_notebook(module, rewrite_module(tmp_path, module))))
    assert "FastSigmoidSpike.apply" not in runnable_source(after)
    before_results = run_cells(runnable_source(module), tmp_path)
    after_results = run_cells(runnable_source(after), tmp_path)
    assert after_results == before_results
    assert any(g != 0 for g in before_results["grad"])


# ---- reports -----------------------------------------------------------------------------------


def test_the_diff_is_per_cell_and_names_the_notebook_and_cell() -> None:
    module = module_of(JUPYTER)
    rewritten = module.source.replace("spikes = FastSigmoidSpike.apply(ramp)", "spikes = ramp")
    diff = cell_diff("nb/demo.ipynb", JUPYTER.read_bytes(), rewrite_notebook(module, rewritten))
    assert diff.splitlines() == [
        "--- nb/demo.ipynb:cell_4\t(original)",
        "+++ nb/demo.ipynb:cell_4\t(rewritten)",
        "@@ -1,4 +1,4 @@",
        " %%time",
        " ramp = torch.linspace(-1, 1, 41, requires_grad=True)",
        "-spikes = FastSigmoidSpike.apply(ramp)",
        "+spikes = ramp",
        " spikes.sum().backward()",
    ]
    assert cell_diff("x.ipynb", JUPYTER.read_bytes(), JUPYTER.read_bytes()) == ""


def test_magics_are_listed_where_they_are_in_their_cells() -> None:
    assert magics(module_of(JUPYTER)) == [
        (CellPosition(1, 1, 1), "%matplotlib inline"),
        (CellPosition(1, 2, 1), "!pip install torch --quiet"),
        (CellPosition(4, 1, 1), "%%time"),
        (CellPosition(5, 1, 1), "FastSigmoidSpike.forward?"),
        (CellPosition(9, 8, 9), "!ls"),
    ]


def test_hidden_code_names_what_the_module_does_not_show() -> None:
    hidden = hidden_code(module_of(JUPYTER))
    assert "%%time" in hidden and "!pip install torch --quiet" in hidden
    assert "FastSigmoidSpike.apply is not Python here" in hidden  # the %%bash cell
    assert "def unfinished(x:" in hidden  # the cell that does not parse


def test_hidden_code_keeps_a_function_that_only_a_magic_still_names(tmp_path: Path) -> None:
    """``--remove-unused`` counts mentions in the project's texts: on the module alone it would
    drop FastSigmoidSpike although ``FastSigmoidSpike.forward?`` (cell 5) still names it."""
    module = module_of(JUPYTER)
    home = tmp_path / "notebook_module.py"
    rewritten = rewrite_module(tmp_path, module)
    assert removable_names({home: rewritten}, home, ["FastSigmoidSpike"]) == {"FastSigmoidSpike"}
    texts = {home: rewritten, tmp_path / "hidden": hidden_code(module)}
    assert removable_names(texts, home, ["FastSigmoidSpike"]) == set()


def test_inserted_code_comes_before_its_first_use_in_cell_order(tmp_path: Path) -> None:
    """The module's last import is in a later cell than the first use: a notebook runs its
    cells top to bottom, so ``import torch`` and the generated function go before the use."""
    (tmp_path / "spikes.py").write_text(SPIKES_MODULE)
    cells = [
        "from spikes import HeavisideBoxcar\nimport torch as th\n",
        "v = th.randn(5)\nz = HeavisideBoxcar.apply(v)\n",
        "import numpy as np\n",
    ]
    module = build_module(read_notebook(notebook_bytes(cells)))
    new = split_module(module, rewrite_module(tmp_path, module, "function"))
    assert "import torch\n" not in new[2] and "def heaviside_boxcar_fgi" not in new[2]
    assert new[0].startswith(cells[0] + "import torch\n\n\ndef heaviside_boxcar_fgi(")
    assert new[1] == "v = th.randn(5)\nz = heaviside_boxcar_fgi(v)\n"
