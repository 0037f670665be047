"""Notebooks in a whole run (issue 16): found by the walk, indexed with the project's modules,
rewritten, verified, written back byte for byte outside the changed cells, reported per cell;
with --check, --diff, JSON, stdin, ``# fgi: skip``, --jobs, --remove-unused and --style function.

The notebook layer itself (reading, masking, splitting) is tested in test_notebook.py; the
notebook fixtures in test_fixtures.py and test_notebook_fixtures.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import libcst as cst
import pytest
from click.testing import CliRunner, Result

from fgi_rewrite import Options, run
from fgi_rewrite.cli import main
from fgi_rewrite.pipeline import notebooks, parallel
from fgi_rewrite.pipeline.report import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from fgi_rewrite.project import index as index_module
from fgi_rewrite.project.notebook import build_module, runnable_source
from fgi_rewrite.project.notebook_json import NotebookError, read_notebook
from fgi_rewrite.project.source_module import SourceError
from tests.sources import DEFINITION, SURROGATE, notebook

# A surrogate defined in a notebook cell, applied in later cells (one inside a function).
NOTEBOOK_CELLS = [
    "%matplotlib inline\nimport torch",
    DEFINITION.split('"""\n', 2)[-1].replace("import torch\n\n\n", "").strip(),
    "%%time\nv = torch.linspace(-2, 2, 41, requires_grad=True)\ns = SpikeFn.apply(v - 0.5)\n"
    "s.sum().backward()",
    "SpikeFn.forward?",
    "def layer(x):\n    return SpikeFn.apply(x)\n\n\nout = layer(torch.randn(3))",
]
# A notebook calling a Function of a project module.
IMPORTING_CELLS = [
    "import torch\nfrom surrogates import SpikeFn",
    "x = torch.randn(4, requires_grad=True)\ny = SpikeFn.apply(x)",
]
# Nothing to do: must stay the same bytes (indent 2, no final newline, an ASCII escape).
PLAIN_CELLS = ["import math\n", "# \u03b8\nmath.pi"]


def sources(data: bytes) -> dict[int, str]:
    return {cell.index: cell.source for cell in read_notebook(data).cells}


def without_sources(data: bytes) -> Any:
    parsed = json.loads(data)
    for cell in parsed["cells"]:
        cell["source"] = None
    return parsed


def invoke(*args: str | Path, input: bytes | None = None, cwd: Path | None = None) -> Result:
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)
    finally:
        os.chdir(old)


@pytest.fixture(autouse=True)
def _no_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGI_REWRITE_VERIFY", "none")  # tests that verify say so


def project(root: Path) -> Path:
    """A project mixing modules and notebooks."""
    (root / "pyproject.toml").write_text("[project]\nname = 'snn'\n")
    (root / "surrogates.py").write_text(DEFINITION)
    (root / "model.py").write_text(SURROGATE.replace("fire", "fire_module"))
    (root / "cells.ipynb").write_bytes(notebook(NOTEBOOK_CELLS))
    (root / "uses_module.ipynb").write_bytes(notebook(IMPORTING_CELLS))
    (root / "plain.ipynb").write_bytes(notebook(PLAIN_CELLS, indent=2, newline=False))
    checkpoints = root / ".ipynb_checkpoints"
    checkpoints.mkdir()
    (checkpoints / "cells-checkpoint.ipynb").write_bytes(notebook(NOTEBOOK_CELLS))
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---- the "done when" -------------------------------------------------------------------


def test_a_mixed_project_is_rewritten_in_one_run_verified_and_then_stable(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    root = project(tmp_path)
    before = tree(root)
    first = invoke("--verify", "grad", root)
    assert first.exit_code == EXIT_OK, first.output
    after = tree(root)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"cells.ipynb", "uses_module.ipynb", "model.py"}
    # Every call site, across modules and notebooks; each surrogate verified.
    assert "4 call sites rewritten in 3 files" in first.stderr
    assert "verify SpikeFn: grad ✓" in first.stderr
    assert first.stderr.count("verify SpikeFn: grad ✓") == 3  # surrogates.py, model, cells
    for name in ("cells.ipynb", "uses_module.ipynb"):
        assert "SpikeFn.apply" not in runnable_source(build_module(read_notebook(after[name])))
        assert without_sources(after[name]) == without_sources(before[name])
    # The magics are back, the cell magic first; the help request still names the class.
    new = sources(after["cells.ipynb"])
    assert new[0] == NOTEBOOK_CELLS[0] and new[3] == "SpikeFn.forward?"
    assert new[2].startswith("%%time\nv = torch.linspace")
    # A second run changes nothing.
    second = invoke("--verify", "grad", root)
    assert second.exit_code == EXIT_OK and tree(root) == after
    assert "0 call sites rewritten" in second.stderr


def test_notebooks_without_surrogates_stay_the_same_bytes(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = tree(root)
    assert invoke(root).exit_code == EXIT_OK
    after = tree(root)
    for name in ("plain.ipynb", ".ipynb_checkpoints/cells-checkpoint.ipynb", "surrogates.py"):
        assert after[name] == before[name]


def test_the_walk_finds_notebooks_and_applies_the_excludes(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / ".gitignore").write_text("ignored.ipynb\n")
    (root / ".git").mkdir()
    (root / "ignored.ipynb").write_bytes(notebook(IMPORTING_CELLS))
    (root / "excluded.ipynb").write_bytes(notebook(IMPORTING_CELLS))
    result = invoke("--check", "--extend-exclude", "excluded", root)
    assert result.exit_code == EXIT_CHANGES
    would = sorted(line for line in result.stderr.splitlines() if line.startswith("would"))
    assert would == [f"would rewrite {root / n}" for n in ("cells.ipynb", "model.py")] + [
        f"would rewrite {root / 'uses_module.ipynb'}"
    ]
    # A notebook given explicitly is processed (.gitignore does not apply to it).
    explicit = invoke("--check", root / "ignored.ipynb")
    assert explicit.exit_code == EXIT_CHANGES and "would rewrite" in explicit.stderr


# ---- reports -----------------------------------------------------------------------------------


def test_check_and_diff_show_each_changed_cell_and_write_nothing(tmp_path: Path) -> None:
    root = project(tmp_path)
    before = tree(root)
    result = invoke("--check", "--diff", root / "cells.ipynb")
    assert result.exit_code == EXIT_CHANGES
    assert tree(root) == before
    headers = [line for line in result.stdout.splitlines() if line.startswith(("---", "+++"))]
    assert headers == [
        f"--- {root / 'cells.ipynb'}:cell_2\t(original)",
        f"+++ {root / 'cells.ipynb'}:cell_2\t(rewritten)",
        f"--- {root / 'cells.ipynb'}:cell_4\t(original)",
        f"+++ {root / 'cells.ipynb'}:cell_4\t(rewritten)",
    ]
    assert " %%time\n" in result.stdout and "-s = SpikeFn.apply(v - 0.5)\n" in result.stdout


def test_json_reports_the_cell_of_each_call_site_and_diagnostic(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "broken.ipynb").write_bytes(
        notebook(["import torch", "def f(x:\n    pass", "from surrogates import SpikeFn"])
    )
    result = invoke("--format", "json", "--check", root)
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == EXIT_ERROR == result.exit_code
    files = {Path(f["path"]).name: f for f in payload["files"]}
    sites = [(s["cell"], s["line"], s["column"]) for s in files["cells.ipynb"]["call_sites"]]
    assert sites == [(2, 3, 5), (4, 2, 12)]
    assert [s["cell"] for s in files["model.py"]["call_sites"]] == [None]
    (error,) = [d for d in payload["diagnostics"] if d["code"] == "FGI901"]
    assert (Path(error["path"]).name, error["cell"], error["line"]) == ("broken.ipynb", 1, 1)
    spike = next(f for f in payload["functions"] if f["path"].endswith("surrogates.py"))
    assert spike["cell"] is None
    assert {f["name"] for f in payload["functions"]} >= {
        "cells.ipynb.SpikeFn",
        "surrogates.SpikeFn",
    }


def test_an_unparsable_cell_is_an_error_and_the_other_cells_are_written(tmp_path: Path) -> None:
    cells = [*NOTEBOOK_CELLS, "def unfinished(x:\n    return SpikeFn.apply(x)"]
    path = tmp_path / "nb.ipynb"
    path.write_bytes(notebook(cells))
    result = invoke(path)
    assert result.exit_code == EXIT_ERROR
    assert f"{path}:cell_5:1:1: FGI901 cannot parse: '(' was never closed" in result.stderr
    new = sources(path.read_bytes())
    assert "SpikeFn.apply" not in new[2] + new[4] and new[5] == cells[5]


def test_a_file_that_is_not_a_notebook_is_reported_and_the_others_processed(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    (root / "broken.ipynb").write_text('{"cells": [')
    result = invoke(root)
    assert result.exit_code == EXIT_ERROR
    assert f"{root / 'broken.ipynb'}:1:1: FGI901 cannot read the notebook: invalid JSON" in (
        result.stderr
    )
    assert "rewrote" in result.stderr and (root / "broken.ipynb").read_text() == '{"cells": ['


def test_a_surrogate_applied_in_a_magic_is_reported_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    cells = [*NOTEBOOK_CELLS[:2], "x = torch.randn(5)\n%timeit SpikeFn.apply(x)"]
    path.write_bytes(notebook(cells))
    result = invoke("--check", path)
    assert f"{path}:cell_2:2:9: FGI911 SpikeFn: applied in the IPython magic" in result.stderr
    # Only in magics: the module view has no call site, the magic is still reported.
    only = tmp_path / "only.ipynb"
    only.write_bytes(notebook(["from surrogates import SpikeFn", "%time y = SpikeFn.apply(x)"]))
    (tmp_path / "surrogates.py").write_text(DEFINITION)
    result = invoke("--check", only)
    assert result.exit_code == EXIT_OK  # a warning: the program is the same
    assert f"{only}:cell_1:1:11: FGI911 SpikeFn" in result.stderr


def test_cells_in_other_languages_are_notes(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_bytes(notebook([*NOTEBOOK_CELLS, "%%bash\necho SpikeFn.apply"]))
    result = invoke("-v", "--check", path)
    assert f"{path}:cell_5:1:1: FGI010 %%bash cell: not Python" in result.stderr
    assert "FGI010" not in invoke("--check", path).stderr


# ---- options -----------------------------------------------------------------------------------


def test_stdin_with_a_notebook_filename(tmp_path: Path) -> None:
    root = project(tmp_path)
    data = (root / "cells.ipynb").read_bytes()
    result = invoke("-", "--stdin-filename", "cells.ipynb", input=data, cwd=root)
    assert result.exit_code == EXIT_OK
    written = result.stdout_bytes
    assert written != data and (root / "cells.ipynb").read_bytes() == data
    assert without_sources(written) == without_sources(data)
    assert "SpikeFn.apply(v - 0.5)" not in sources(written)[2]
    diff = invoke("--diff", "-", "--stdin-filename", "cells.ipynb", input=data, cwd=root)
    assert diff.stdout.startswith("--- cells.ipynb:cell_2\t(original)")


def test_skip_marker_in_a_cell(tmp_path: Path) -> None:
    cells = [*NOTEBOOK_CELLS[:2], "v = torch.randn(3)\ns = SpikeFn.apply(v)  # fgi: skip"]
    cells.append("t = SpikeFn.apply(v)")
    path = tmp_path / "nb.ipynb"
    path.write_bytes(notebook(cells))
    assert invoke(path).exit_code == EXIT_OK
    new = sources(path.read_bytes())
    assert new[2] == cells[2] and "SpikeFn.apply" not in new[3]


def test_workers_give_the_same_report_and_diffs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []
    original = parallel.Workers.__init__

    def counting(self: parallel.Workers, jobs: int, *args: Any) -> None:
        started.append(jobs)
        original(self, jobs, *args)

    monkeypatch.setattr(parallel, "MIN_WORK", 0)
    monkeypatch.setattr(parallel.Workers, "__init__", counting)
    root = project(tmp_path)
    one = invoke("--format", "json", "--diff", "--jobs", "1", root)
    two = invoke("--format", "json", "--diff", "--jobs", "2", root)
    assert started == [2]
    assert one.stdout == two.stdout and json.loads(two.stdout)["summary"]["files_changed"] == 3


def test_remove_unused_keeps_what_a_magic_still_names(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_bytes(notebook(NOTEBOOK_CELLS))  # cell 3: ``SpikeFn.forward?``
    assert invoke("--remove-unused", path).exit_code == EXIT_OK
    assert "class SpikeFn" in sources(path.read_bytes())[1]
    (tmp_path / "other").mkdir()
    other = tmp_path / "other" / "nb.ipynb"  # a project of its own
    cells = [c for c in NOTEBOOK_CELLS if "forward?" not in c]
    other.write_bytes(notebook(cells))
    assert invoke("--remove-unused", other).exit_code == EXIT_OK
    assert "class SpikeFn" not in sources(other.read_bytes())[1]


def test_remove_unused_keeps_an_import_a_magic_uses(tmp_path: Path) -> None:
    (tmp_path / "surrogates.py").write_text(DEFINITION)
    path = tmp_path / "nb.ipynb"
    cells = [*IMPORTING_CELLS, "%timeit SpikeFn.apply(x)"]
    path.write_bytes(notebook(cells))
    assert invoke("--remove-unused", path).exit_code == EXIT_OK
    assert sources(path.read_bytes())[0] == cells[0]


def test_style_function_in_notebooks_and_their_modules(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert invoke("--style", "function", root).exit_code == EXIT_OK
    cells = sources((root / "cells.ipynb").read_bytes())
    # The generated function follows its class, in the class's cell.
    assert cells[1].startswith(NOTEBOOK_CELLS[1] + "\n\n\ndef spike_fn_fgi(")
    assert "s = spike_fn_fgi(v - 0.5)" in cells[2]
    # A Function of a module given too: generated there, imported where the notebook imports.
    assert "def spike_fn_fgi(" in (root / "surrogates.py").read_text()
    importing = sources((root / "uses_module.ipynb").read_bytes())
    assert importing[0] == IMPORTING_CELLS[0] + "\nfrom surrogates import spike_fn_fgi"
    assert invoke("--style", "function", "--check", root).exit_code == EXIT_OK


def test_a_notebook_imports_from_its_own_directory_first(tmp_path: Path) -> None:
    """Jupyter runs a notebook in its directory: ``from surrogates import SpikeFn`` there is the
    file beside it, even inside a package (where the index names it ``experiments.surrogates``)
    and when another ``surrogates.py`` exists at the top."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "surrogates.py").write_text("SpikeFn = None\n")
    package = tmp_path / "experiments"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "surrogates.py").write_text(DEFINITION)
    path = package / "run.ipynb"
    path.write_bytes(notebook(IMPORTING_CELLS))
    assert invoke("--style", "function", tmp_path).exit_code == EXIT_OK
    new = sources(path.read_bytes())
    assert new[0] == IMPORTING_CELLS[0] + "\nfrom surrogates import spike_fn_fgi"
    assert "def spike_fn_fgi(" in (package / "surrogates.py").read_text()
    assert (tmp_path / "surrogates.py").read_text() == "SpikeFn = None\n"


def test_no_import_reaches_a_notebook(tmp_path: Path) -> None:
    """A module named like a notebook imports the module, not the notebook."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "cells.ipynb").write_bytes(notebook(NOTEBOOK_CELLS))
    (tmp_path / "user.py").write_text("from cells import SpikeFn\n\ny = SpikeFn.apply(1)\n")
    result = invoke("--check", tmp_path / "user.py")
    assert result.exit_code == EXIT_OK and "would rewrite" not in result.stderr


def test_a_rewrite_that_cannot_go_back_into_the_cells_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lost(*args: object) -> bytes:
        raise NotebookError("the rewrite moved or removed a boundary between cells")

    monkeypatch.setattr(notebooks, "rewrite_notebook", lost)
    root = project(tmp_path)
    before = tree(root)
    result = invoke(root)
    assert result.exit_code == EXIT_ERROR
    assert f"{root / 'cells.ipynb'}:1:1: FGI910 the rewrite cannot be put back" in result.stderr
    after = tree(root)
    assert after["cells.ipynb"] == before["cells.ipynb"]
    assert after["model.py"] != before["model.py"]  # the other files are written


def test_a_cell_libcst_refuses_is_left_out_and_the_rest_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Syntax Python's parser accepts and libcst does not (newer than libcst knows): simulated
    with a marker line, on which the parse fails as libcst's does."""
    parse = index_module.parse_source

    def refusing(source: bytes | str) -> cst.Module:
        text = source if isinstance(source, str) else source.decode()
        if "NEWER_SYNTAX" in text:
            return parse(text.replace("NEWER_SYNTAX", "def (:"))
        return parse(source)

    monkeypatch.setattr(index_module, "parse_source", refusing)
    path = tmp_path / "nb.ipynb"
    cells = [*NOTEBOOK_CELLS, "NEWER_SYNTAX = SpikeFn.apply(v)"]
    path.write_bytes(notebook(cells))
    result = invoke(path)
    assert result.exit_code == EXIT_ERROR
    assert f"{path}:cell_5:1:1: FGI901 cannot parse:" in result.stderr
    new = sources(path.read_bytes())
    assert "SpikeFn.apply" not in new[2] + new[4] and new[5] == cells[5]


def test_the_python_api_reports_cells(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_bytes(notebook(NOTEBOOK_CELLS))
    report = run([path], Options(check=True))
    (result,) = report.changed
    assert [str(site.location) for site in result.call_sites] == [
        f"{path}:cell_2:3:5",
        f"{path}:cell_4:2:12",
    ]
    with pytest.raises(SourceError, match="invalid JSON"):
        index_module.ProjectIndex(tmp_path, [path], lambda p: b"{").notebook(path)


CLASS_ATTRIBUTE = """class SlopeSpike(torch.autograd.Function):
    slope = 4.0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (1.0 + SlopeSpike.slope * x.abs()) ** 2"""


def test_a_class_attribute_set_in_a_magic_is_not_inlined(tmp_path: Path) -> None:
    """``%time SlopeSpike.slope = 2.0`` may rebind the hyperparameter the backward reads: the
    rewrite reads it at run time (FGI113), as when a cell sets it; without the magic the value
    is inlined."""
    path = tmp_path / "nb.ipynb"
    cells = ["import torch", CLASS_ATTRIBUTE, "y = SlopeSpike.apply(torch.randn(3))"]
    path.write_bytes(notebook([*cells, "%time SlopeSpike.slope = 2.0"]))
    result = invoke("--diff", path)
    assert "FGI113" in result.stderr, result.stderr
    assert "SlopeSpike.slope *" in result.stdout
    path.write_bytes(notebook(cells))
    result = invoke("--diff", path)
    assert "FGI113" not in result.stderr and "SlopeSpike.slope *" not in result.stdout


def test_a_function_reached_through_another_module_is_generated_in_the_notebook(
    tmp_path: Path,
) -> None:
    """The notebook does not import the Function's module itself: the generated function is
    not imported from there (which the notebook may not reach) but defined in the notebook."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "surrogates.py").write_text(DEFINITION)
    (tmp_path / "layers.py").write_text("from surrogates import SpikeFn\n")
    path = tmp_path / "nb.ipynb"
    path.write_bytes(notebook(["import torch\nimport layers", "y = layers.SpikeFn.apply(x)"]))
    assert invoke("--style", "function", tmp_path).exit_code == EXIT_OK
    new = sources(path.read_bytes())
    assert new[0].startswith("import torch\nimport layers\n\n\ndef spike_fn_fgi(")
    assert new[1] == "y = spike_fn_fgi(x)"
    assert "spike_fn_fgi" not in (tmp_path / "surrogates.py").read_text()
