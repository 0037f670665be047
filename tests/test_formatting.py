"""The code the rewrite inserts is laid out as the project's black would (rewrite/formatting.py):
black-clean projects stay black-clean at their line length, other projects keep their own lines
byte for byte, and the file's newlines and indentation are kept."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

import black
import pytest

from fgi_rewrite.pipeline.run import Options, run
from fgi_rewrite.rewrite.formatting import (
    DEFAULT_LINE_LENGTH,
    BlackStyle,
    format_code,
    project_styles,
    read_style,
)
from tests.fixture_cases import cases, copy_inputs
from tests.sources import PLAIN, SURROGATE
from tests.test_examples import copy_examples

LINE_LENGTHS = [40, 88, 100, 120]
REWRITTEN_CASES = [c for c in cases() if c.rewritten]


def black_mode(line_length: int) -> black.Mode:
    return black.Mode(line_length=line_length)


def black_format_tree(root: Path, line_length: int) -> None:
    """Format every Python file under ``root`` as ``black -l line_length`` would."""
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        path.write_text(black.format_str(text, mode=black_mode(line_length)))


def unformatted(root: Path, line_length: int) -> list[str]:
    """The files under ``root`` that ``black --check -l line_length`` would reformat."""
    return [
        str(path.relative_to(root))
        for path in sorted(root.rglob("*.py"))
        if black.format_str(path.read_text(), mode=black_mode(line_length)) != path.read_text()
    ]


def black_check(root: Path) -> subprocess.CompletedProcess[str]:
    """``black --check .`` in ``root``: the settings are the project's pyproject.toml."""
    return subprocess.run(
        [sys.executable, "-m", "black", "--check", "."],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_pyproject(root: Path, text: str) -> None:
    (root / "pyproject.toml").write_text(text)


# ---- black-clean before, black-clean after ----------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        Options(),
        Options(style="function"),
        Options(style="function", remove_unused=True),
        Options(remove_unused=True),
    ],
    ids=["inline", "function", "function-remove-unused", "inline-remove-unused"],
)
def test_examples_stay_black_clean_at_the_projects_settings(
    options: Options, tmp_path: Path
) -> None:
    """The example project passes ``black --check`` at the repository's settings (line length
    100) before the rewrite and after it (on main, inserted lines ran to 170 characters)."""
    root = copy_examples(tmp_path)
    write_pyproject(root, '[tool.black]\nline-length = 100\ntarget-version = ["py310"]\n')
    assert black_check(root).returncode == 0
    report = run([root], options)
    assert report.changed and not report.internal_errors
    checked = black_check(root)
    assert checked.returncode == 0, checked.stderr
    assert not run([root], Options(check=True)).changed


def test_remove_unused_keeps_an_import_list_one_name_per_line(tmp_path: Path) -> None:
    """``--remove-unused`` drops a name from an import black laid out one name per line: the
    trailing comma stays, so black keeps the layout (it used to become ``(\n    a)``)."""
    root = copy_examples(tmp_path)
    write_pyproject(root, "[tool.black]\nline-length = 100\n")
    model = root / "snn_demo" / "model.py"
    exploded = (
        "from .surrogates import (\n    atan_spike,\n    fast_sigmoid,\n)\n\nKEEP = atan_spike\n"
    )
    model.write_text(
        model.read_text().replace("from .surrogates import atan_spike, fast_sigmoid\n", exploded)
    )
    assert black_check(root).returncode == 0
    run([root], Options(remove_unused=True))
    assert "from .surrogates import (\n    atan_spike,\n)\n" in model.read_text()
    checked = black_check(root)
    assert checked.returncode == 0, checked.stderr


def test_examples_function_style_on_one_module_stays_black_clean(tmp_path: Path) -> None:
    """The generated functions and the import land after the imports of the calling module."""
    root = copy_examples(tmp_path)
    write_pyproject(root, "[tool.black]\nline-length = 100\n")
    report = run([root / "snn_demo" / "model.py"], Options(style="function"))
    assert report.changed
    assert "def fast_sigmoid_spike_fgi(" in (root / "snn_demo" / "model.py").read_text()
    checked = black_check(root)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("line_length", LINE_LENGTHS)
def test_examples_black_clean_at_each_line_length(line_length: int, tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    black_format_tree(root, line_length)
    write_pyproject(root, f"[tool.black]\nline-length = {line_length}\n")
    assert run([root], Options()).changed
    assert unformatted(root, line_length) == []


def _fixture_black_clean(case_name: str, line_length: int, tmp_path: Path) -> None:
    """The fixture's inputs formatted by black at ``line_length``, rewritten: black has nothing
    left to change in any file, so the block formatted dedented at ``line_length`` minus its
    indentation is what black gives in place."""
    case = next(c for c in REWRITTEN_CASES if c.name == case_name)
    root = copy_inputs(case, tmp_path)
    black_format_tree(root, line_length)
    write_pyproject(root, f"[tool.black]\nline-length = {line_length}\n")
    report = run([root], Options())
    assert not report.internal_errors
    assert unformatted(root, line_length) == []


# A sample across the shapes of emitted code (runtime branches, loops, several inputs, generated
# functions, cross-file imports, class bodies); every case at every length is the slow test.
SAMPLE = [
    "alias_self_attr",
    "call_in_lambda",
    "corpus_dispatch_runtime_id",
    "corpus_local_imports",
    "corpus_runtime_bool_hyper",
    "crossfile_relative",
    "double_gaussian",
    "fourier_loop",
    "multiple_calls_one_statement",
    "nested_in_module",
    "threshold_grad",
]


@pytest.mark.parametrize("line_length", LINE_LENGTHS)
@pytest.mark.parametrize("case_name", SAMPLE)
def test_fixture_sample_black_clean(case_name: str, line_length: int, tmp_path: Path) -> None:
    _fixture_black_clean(case_name, line_length, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("line_length", LINE_LENGTHS)
@pytest.mark.parametrize("case_name", [c.name for c in REWRITTEN_CASES])
def test_every_fixture_black_clean(case_name: str, line_length: int, tmp_path: Path) -> None:
    _fixture_black_clean(case_name, line_length, tmp_path)


# ---- the project's settings -------------------------------------------------------------------

CALL_SITE = """\
import torch


class SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (1.0 + 10.0 * x.abs()) ** 2


class Layer:
    def forward(self, membrane_potential, threshold):
        spikes = SpikeFn.apply(membrane_potential - threshold)
        return spikes
"""


def test_line_length_40_from_tool_black(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.black]\nline-length = 40\n")
    (tmp_path / "model.py").write_text(black.format_str(CALL_SITE, mode=black_mode(40)))
    run([tmp_path], Options())
    after = (tmp_path / "model.py").read_text()
    assert "SpikeFn.apply" not in after
    assert black_check(tmp_path).returncode == 0
    assert (
        "        _fgi_x = (\n            membrane_potential\n            - threshold\n        )\n"
        in after
    )


def test_line_length_120_from_tool_ruff(tmp_path: Path) -> None:
    """Without a black line length, ruff's applies: the injection fits on one line at 120."""
    write_pyproject(tmp_path, "[tool.ruff]\nline-length = 120\n\n[tool.black]\npreview = false\n")
    (tmp_path / "model.py").write_text(CALL_SITE)
    run([tmp_path], Options())
    after = (tmp_path / "model.py").read_text()
    assert max(len(line) for line in after.splitlines()) > DEFAULT_LINE_LENGTH
    assert black.format_str(after, mode=black_mode(120)) == after
    assert black.format_str(after, mode=black_mode(88)) != after


def test_nearest_pyproject_between_file_and_root_wins(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write_pyproject(tmp_path, "[tool.black]\nline-length = 120\n")
    (tmp_path / "narrow").mkdir()
    write_pyproject(tmp_path / "narrow", "[tool.black]\nline-length = 40\n")
    (tmp_path / "wide.py").write_text(CALL_SITE)
    (tmp_path / "narrow" / "model.py").write_text(black.format_str(CALL_SITE, mode=black_mode(40)))
    run([tmp_path], Options())
    wide = (tmp_path / "wide.py").read_text()
    narrow = (tmp_path / "narrow" / "model.py").read_text()
    assert "SpikeFn.apply" not in wide + narrow
    assert black.format_str(wide, mode=black_mode(120)) == wide
    assert black.format_str(narrow, mode=black_mode(40)) == narrow
    assert black.format_str(narrow, mode=black_mode(120)) != narrow


def test_read_style_precedence(tmp_path: Path) -> None:
    assert read_style(tmp_path) == BlackStyle()
    write_pyproject(
        tmp_path,
        '[project]\nrequires-python = ">=3.11"\n\n[tool.ruff]\nline-length = 120\n',
    )
    assert read_style(tmp_path) == BlackStyle(line_length=120, requires_python=">=3.11")
    (tmp_path / "ruff.toml").write_text("line-length = 99\n")  # ruff prefers its own file
    assert read_style(tmp_path).line_length == 99
    write_pyproject(
        tmp_path,
        "[tool.black]\nline-length = 72\ntarget-version = ['py311', 'PY312']\n"
        "skip-string-normalization = true\nskip-magic-trailing-comma = true\npreview = true\n"
        "\n[tool.ruff]\nline-length = 120\n",
    )
    assert read_style(tmp_path) == BlackStyle(
        line_length=72,
        target_versions=("py311", "py312"),
        string_normalization=False,
        magic_trailing_comma=False,
        preview=True,
    )
    write_pyproject(tmp_path, '[tool.black]\nline-length = "wide"\n')  # black refuses it too
    assert read_style(tmp_path).line_length == 99  # the next source, ruff.toml
    write_pyproject(tmp_path, "[tool.black\nbroken")
    assert read_style(tmp_path).line_length == 99


def test_project_styles_read_each_file_once(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.black]\nline-length = 100\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    files = [tmp_path / "a" / "b" / f"m{i}.py" for i in range(3)] + [tmp_path / "top.py"]
    styles = project_styles(tmp_path, files)
    assert styles.by_directory == ((tmp_path, BlackStyle(line_length=100)),)
    assert all(styles.for_file(f).line_length == 100 for f in files)
    assert (
        project_styles(tmp_path / "a", [tmp_path / "a" / "x.py"]).for_file(tmp_path / "a" / "x.py")
        == BlackStyle()
    )  # a pyproject.toml above the project root is not the project's


def test_black_settings_reach_the_formatter() -> None:
    code = "x = f('a', [1, 2,])\n"
    normalized = format_code(code, BlackStyle())
    assert '"a"' in normalized and "        1,\n        2,\n" in normalized
    kept = BlackStyle(string_normalization=False, magic_trailing_comma=False)
    assert format_code(code, kept) == "x = f('a', [1, 2])\n"
    # The indentation a block sits at counts against the line length.
    line = "value = some_function(first_argument, second_argument)\n"
    assert format_code(line, BlackStyle(line_length=60)) == line
    assert format_code(line, BlackStyle(line_length=60), indent="        ") != line
    assert format_code(line, BlackStyle(line_length=60), indent="\t\t") != line


def test_trailing_comma_after_unpacking_follows_the_module_targets() -> None:
    """Without configured targets, black decides a trailing comma after ``*args`` in a split
    call from the whole module (an f-string means Python 3.6+); the block follows it."""
    code = "result = some_function(first_argument_value, *remaining_arguments_list)\n"
    modern = 'name = f"{x}"\n' + code
    in_place = black.format_str(modern, mode=black_mode(40))
    alone = format_code(code, BlackStyle(line_length=40), module_source=modern)
    assert in_place == 'name = f"{x}"\n' + alone
    assert "remaining_arguments_list,\n" in alone


# ---- projects that are not black-clean --------------------------------------------------------

UNFORMATTED = """\
import torch
import math
x_scale = 2.0 ;  y_scale = 'three'


class SpikeFn(torch.autograd.Function):
  @staticmethod
  def forward(ctx, x):
    ctx.save_for_backward(x)
    return (x > 0).float()
  @staticmethod
  def backward(ctx, grad_output):
    x, = ctx.saved_tensors
    return grad_output / (1.0 + 10.0 * x.abs()) ** 2
def fire( v, th = 1.0 ):
  unrelated = [ 1,2,3 ]       # odd spacing, kept
  spikes = SpikeFn.apply( v - th )
  return spikes, {'a':unrelated}
"""


def test_unformatted_project_keeps_its_own_lines(tmp_path: Path) -> None:
    """Only the call site's statement is replaced by the (formatted) block; every other line
    stays byte for byte, whatever black would make of it."""
    (tmp_path / "model.py").write_text(UNFORMATTED)
    run([tmp_path], Options())
    before = UNFORMATTED.splitlines()
    after = (tmp_path / "model.py").read_text().splitlines()
    changes = [
        op for op in difflib.SequenceMatcher(None, before, after).get_opcodes() if op[0] != "equal"
    ]
    assert len(changes) == 1
    tag, i1, i2, j1, j2 = changes[0]
    assert tag == "replace" and before[i1:i2] == ["  spikes = SpikeFn.apply( v - th )"]
    block = after[j1:j2]
    assert all(line.startswith("  ") for line in block)  # the module's two-space indentation
    assert block[:3] == [
        "  _fgi_x = v - th",
        "  spikes = (_fgi_x > 0).float()",
        "  if torch.is_grad_enabled() and _fgi_x.requires_grad:",
    ]
    assert block[3] == "    _fgi_x_detached = _fgi_x.detach()"  # nested one more module indent


def test_edited_statement_is_formatted_only_when_its_original_was(tmp_path: Path) -> None:
    """A statement where a call is replaced in place (here by a generated function) is laid out
    by black when the original was black's layout, else left as the user wrote it."""
    start = "    return FastSigmoidSpikeFn.apply(v) + "
    statement = start + "x" * (88 - len(start))  # 88 wide: one character more must split
    definition = SURROGATE.split("\n\ndef fire")[0].replace("SpikeFn", "FastSigmoidSpikeFn")
    clean = (
        definition.replace('"""\nimport', '"""\n\nimport')
        + f"\n\ndef fire(v, {'x' * (88 - len(start))}):\n{statement}\n"
    )
    assert black.format_str(clean, mode=black_mode(88)) == clean
    (tmp_path / "clean.py").write_text(clean)
    messy = clean.replace("return FastSigmoidSpikeFn", "return  FastSigmoidSpikeFn")
    (tmp_path / "messy.py").write_text(messy)
    run([tmp_path], Options(style="function"))
    after_clean = (tmp_path / "clean.py").read_text()
    assert "return FastSigmoidSpikeFn" not in after_clean
    assert black.format_str(after_clean, mode=black_mode(88)) == after_clean
    after_messy = (tmp_path / "messy.py").read_text()
    assert "    return  fast_sigmoid_spike_fn_fgi(v) + xxx" in after_messy


# ---- newlines and indentation of the module ---------------------------------------------------


def _long_call_site(newline: str, indent: str) -> bytes:
    text = CALL_SITE.replace("    ", indent).replace("\n", newline)
    return text.encode()


@pytest.mark.parametrize(
    "newline, indent",
    [("\r\n", "    "), ("\n", "\t"), ("\r\n", "\t")],
    ids=["crlf", "tabs", "tabs-crlf"],
)
def test_formatted_block_keeps_newlines_and_indentation(
    newline: str, indent: str, tmp_path: Path
) -> None:
    write_pyproject(tmp_path, "[tool.black]\nline-length = 40\n")  # continuation lines
    source = _long_call_site(newline, indent)
    (tmp_path / "model.py").write_bytes(source)
    run([tmp_path], Options())
    after = (tmp_path / "model.py").read_bytes()
    assert b"SpikeFn.apply" not in after
    if newline == "\r\n":
        assert after.count(b"\n") == after.count(b"\r\n")
    else:
        assert b"\r" not in after
    lines = after.decode().splitlines()
    start = lines.index(f"{indent}def forward(self, membrane_potential, threshold):")
    body = lines[start + 1 : lines.index(f"{indent * 2}return spikes")]
    assert len(body) > 6 and any(line.rstrip().endswith("(") for line in body)  # split lines
    for line in body:  # every statement at the module's indentation, in the module's character
        assert line.startswith(indent * 2)
        if indent == "\t":
            assert not line.startswith(" ")
    compile(after, "model.py", "exec", dont_inherit=True)  # compiled only, never run
    assert not run([tmp_path], Options(check=True)).changed  # a second run changes nothing


def test_two_blank_lines_after_a_generated_function(tmp_path: Path) -> None:
    """A generated function placed after the imports is followed by the two blank lines black
    wants, when the statement after the imports had one."""
    (tmp_path / "surrogates.py").write_text(SURROGATE.split("\n\ndef fire")[0] + "\n")
    user = '"""Layers."""\n\nfrom surrogates import SpikeFn\n\nSCALE = 2.0\n\n\n' + (
        "def layer(v):\n    return [SpikeFn.apply(x) for x in v]\n"
    )
    assert black.format_str(user, mode=black_mode(88)) == user
    (tmp_path / "layers.py").write_text(user)
    run([tmp_path / "layers.py"], Options())
    after = (tmp_path / "layers.py").read_text()
    assert "import torch\n\n\ndef spike_fn_fgi(" in after and "\n\n\nSCALE = 2.0\n" in after
    assert black.format_str(after, mode=black_mode(88)) == after


# ---- cost ------------------------------------------------------------------------------------


def _imports_black(tmp_path: Path, source: str) -> bool:
    (tmp_path / "m.py").write_text(source)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from fgi_rewrite.pipeline.run import Options, run\n"
        f"run([Path({str(tmp_path)!r})], Options(diff=True))\n"
        "print('black' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip() == "True"


def test_black_is_imported_only_when_something_is_rewritten(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "surrogate").mkdir()
    assert not _imports_black(tmp_path / "plain", PLAIN)
    assert _imports_black(tmp_path / "surrogate", SURROGATE)
