"""Big files are read reduced to the statements a run may need (``project/elide.py``); the
result must be the one of reading them whole (issue 18, item 10). Timings live in
``benchmarks/big_file.py``, not here."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libcst as cst
import pytest
from click.testing import CliRunner

from fgi_rewrite import Options, run
from fgi_rewrite.cli import main
from fgi_rewrite.pipeline import parallel
from fgi_rewrite.pipeline.report import EXIT_CHANGES, EXIT_ERROR
from fgi_rewrite.project import elide
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import SourceReader
from tests.fixture_cases import EXPECTED_REPORT, Case, cases, copy_inputs, report_lines, run_case
from tests.sources import DEFINITION, SURROGATE

CASES = cases()


@pytest.fixture
def reduce_everything(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every file is read reduced, parsed one statement at a time."""
    monkeypatch.setattr(elide, "THRESHOLD", 0)
    monkeypatch.setattr(elide, "GROUP", 1)
    elide.forget()
    yield
    elide.forget()


def padding(tag: str, count: int = 30) -> str:
    """Generated-looking statements nothing relevant depends on."""
    return "".join(
        f"W_{tag}_{i} = [{i}.0, {i}.5]  # weights\n\n\n"
        f"def layer_{tag}_{i}(x, scale=W_{tag}_{i}):\n    return x * scale[0]\n\n\n"
        for i in range(count)
    )


def padded(source: str, tag: str) -> str:
    """``source`` with padding after its imports and at its end."""
    lines = source.splitlines(keepends=True)
    at = next(
        (i for i, line in enumerate(lines) if line.startswith(("def ", "class ", "@"))),
        len(lines),
    )
    return "".join(lines[:at]) + padding(tag + "a") + "".join(lines[at:]) + padding(tag + "z")


# ---- the same result ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_fixtures_give_the_same_result_read_reduced(
    case: Case, tmp_path: Path, reduce_everything: None
) -> None:
    root = copy_inputs(case, tmp_path)
    report = run_case(root)
    for relative in case.input_files():
        expected = case.expected(relative)
        want = expected.read_bytes() if expected else (case.directory / relative).read_bytes()
        assert (root / relative).read_bytes().decode() == want.decode(), relative
    report_file = case.directory / EXPECTED_REPORT
    want_report = report_file.read_text().splitlines() if report_file.exists() else []
    assert report_lines(report, root) == want_report


@pytest.mark.parametrize("case", [c for c in CASES if c.rewritten][::4], ids=lambda c: c.name)
def test_padded_fixtures_give_the_same_result_read_reduced(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = {}
    for reduced in (False, True):
        root = copy_inputs(case, tmp_path / str(reduced))
        for relative in case.input_files():
            path = root / relative
            path.write_text(padded(path.read_text(), "p"))
        monkeypatch.setattr(elide, "THRESHOLD", 0 if reduced else 1 << 60)
        elide.forget()
        report = run_case(root)
        results[reduced] = (
            {r: (root / r).read_bytes() for r in case.input_files()},
            report_lines(report, root),
        )
    assert results[True] == results[False]


def test_a_statement_left_out_is_restored_byte_for_byte(
    tmp_path: Path, reduce_everything: None
) -> None:
    head = "#!/usr/bin/env python\r\n# -*- coding: utf-8 -*-\r\n"
    odd = (
        "a = 1; b = 2  # two on a line\r\n"
        "@staticmethod\r\n"
        "# a comment between decorator and def\r\n"
        "def helper(x):\r\n    return x\r\n"
        'TEMPLATE = """\r\nx = 1\r\ndef f():\r\n    pass\r\n"""\r\n'  # code in a string
        "if a:\r\n    c = 3\r\nelse:\r\n    c = 4\r\n"
        "    # an indented comment after a block\r\n"
    )
    path = tmp_path / "big.py"
    path.write_bytes((head + odd + SURROGATE.replace("\n", "\r\n") + odd + "z = 0").encode())
    original = path.read_bytes()
    reduced = elide.reduce(path, original)
    assert reduced != original and len(reduced.splitlines()) == len(original.splitlines())
    assert elide.restore(path, reduced) == original
    run([path], Options())
    text = path.read_bytes()
    assert b"SpikeFn.apply" not in text and b"@fgi-elided" not in text
    assert text.endswith(odd.encode() + b"z = 0")
    assert text.startswith((head + odd).encode())


# ---- what is kept -----------------------------------------------------------------------------


def kept_source(path: Path) -> str:
    return elide.reduce(path, path.read_bytes()).decode()


def test_what_a_kept_statement_reads_or_rebinds_is_kept(
    tmp_path: Path, reduce_everything: None
) -> None:
    path = tmp_path / "snn.py"
    source = SURROGATE.replace("10.0 * x.abs()", "SLOPE * x.abs()")
    path.write_text(
        "import torch\nfrom helpers import spike\n\nSLOPE = 10.0\n"
        + padding("a")
        + source.split("import torch\n", 1)[1]
        + "\n\nSLOPE = 25.0  # rebinds what the backward reads\n"
        + "def late(v):\n    return spike(v)  # a name a kept import binds\n"
        + "def other(v):\n    global COUNT\n    COUNT = v\n"
        + "COUNT = 0\n"
        + padding("z")
    )
    kept = kept_source(path)
    assert kept.count("SLOPE = ") == 2 and "return spike(v)" in kept
    assert "W_a_3 = " not in kept and "def layer_z_3" not in kept
    assert "@fgi-elided" in kept and ast.parse(kept)


def test_fresh_names_avoid_names_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A temporary the rewrite adds at module level must not take a name that only a statement
    left out uses."""
    taken = "_fgi_x_d = _fgi_out = _fgi_v = _fgi_x = 'taken'\n"
    source = SURROGATE + "\n\nspikes = SpikeFn.apply(torch.zeros(3) - 1.0)\n" + padding("z") + taken
    texts = {}
    for reduced in (False, True):
        path = tmp_path / str(reduced) / "snn.py"
        path.parent.mkdir()
        path.write_text(source)
        monkeypatch.setattr(elide, "THRESHOLD", 0 if reduced else 1 << 60)
        elide.forget()
        if reduced:
            assert "_fgi_x_d = " not in kept_source(path)
        run([path], Options())
        texts[reduced] = path.read_text()
    assert texts[True] == texts[False]
    assert "SpikeFn.apply" not in texts[True]
    module_level = [
        node.id
        for statement in ast.parse(texts[True]).body
        if not isinstance(statement, (ast.FunctionDef, ast.ClassDef))
        for node in ast.walk(statement)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    ]
    for name in ("_fgi_x_d", "_fgi_out", "_fgi_v", "_fgi_x"):
        assert module_level.count(name) == 1, name  # the statement that took it


def test_a_big_file_with_one_call_is_parsed_reduced(tmp_path: Path) -> None:
    """Only the kept statements reach libcst (a 5 MB module took 4.8 GB as a libcst tree)."""
    path = tmp_path / "tables.py"
    path.write_text(padding("a", 3000) + SURROGATE + padding("z", 3000))
    assert path.stat().st_size > elide.THRESHOLD
    elide.forget()
    index = ProjectIndex(tmp_path, [path], SourceReader())
    body = index.module(path).tree.body  # the Function, its call, two placeholders
    assert len(body) < 10 and sum(isinstance(s, cst.ClassDef) for s in body) == 1
    report = run([path], Options(check=True))
    assert report.call_sites == 1
    (result,) = report.changed
    assert result.before == path.read_bytes()
    assert result.after.count(b"def layer_") == 6000


def test_restore_in_a_process_that_did_not_reduce(tmp_path: Path, reduce_everything: None) -> None:
    path = tmp_path / "snn.py"
    path.write_text(padding("a") + SURROGATE)
    reduced = elide.reduce(path, path.read_bytes())
    elide.forget()  # a worker reduced it, not this process
    assert elide.restore(path, reduced) == path.read_bytes()
    path.write_text(padding("b") + SURROGATE)  # changed since
    elide.forget()
    with pytest.raises(ValueError):
        elide.restore(path, reduced)


# ---- bad input in a big file ------------------------------------------------------------------


def test_bad_input_in_a_big_file_is_reported(tmp_path: Path, reduce_everything: None) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text(padding("a") + "def f(:\n    pass\n" + padding("z"))
    latin = tmp_path / "latin.py"
    latin.write_bytes(padding("b").encode() + b"# caf\xe9\n" + padding("y").encode())
    (tmp_path / "user.py").write_text(SURROGATE)
    result = CliRunner().invoke(main, ["--check", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == EXIT_ERROR
    line = padding("a").count("\n") + 1
    assert f"{broken}:{line}:7: FGI901 cannot parse" in result.stderr
    assert f"{latin}:{padding('b').count(chr(10)) + 1}:6: FGI901 cannot decode" in result.stderr


def test_a_checked_file_calling_into_a_big_module(tmp_path: Path, reduce_everything: None) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "surrogates.py").write_text(padding("a") + DEFINITION + padding("z"))
    user = tmp_path / "model.py"
    user.write_text(
        "from surrogates import SpikeFn\n\n\ndef step(v):\n    return SpikeFn.apply(v)\n"
    )
    result = CliRunner().invoke(main, ["--check", str(user)], catch_exceptions=False)
    assert result.exit_code == EXIT_CHANGES and f"would rewrite {user}" in result.stderr


def test_a_big_file_that_no_call_needs_is_only_read(tmp_path: Path) -> None:
    """pre-commit passes one file of a project holding a big generated module: that module is
    searched as text, never parsed."""
    (tmp_path / "pyproject.toml").write_text("")
    tables = tmp_path / "tables.py"
    tables.write_text("import torch\n\n" + padding("a", 3000))
    assert tables.stat().st_size > elide.THRESHOLD
    model = tmp_path / "model.py"
    model.write_text(SURROGATE)
    elide.forget()
    report = run([model], Options(check=True))
    assert report.call_sites == 1
    assert elide.reduction_count(tables) == 0
    run([tmp_path], Options(check=True))  # given: parsed (its syntax is checked), reduced
    assert elide.reduction_count(tables) == 1


COMPARE = """
import sys, torch
sys.path.insert(0, sys.argv[1])
import tables
x = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
y = tables.fire(x) + tables.layer_a_7(x) + tables.W_z_2999[1]
y.sum().backward()
print(repr(y.detach().tolist()), repr(x.grad.tolist()))
"""


def test_a_rewritten_big_module_runs_as_before(tmp_path: Path) -> None:
    """End to end, verification included: the module written back (placeholders restored)
    imports and gives the original's values and gradients."""
    pytest.importorskip("torch")
    source = padding("a", 3000) + SURROGATE + padding("z", 3000)
    outputs = []
    for name in ("original", "rewritten"):
        project = tmp_path / name
        (project / ".git").mkdir(parents=True)
        (project / "tables.py").write_text(source)
        if name == "rewritten":
            done = subprocess.run(
                [sys.executable, "-m", "fgi_rewrite", "--verify", "grad", str(project)],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert "verify SpikeFn: grad ✓" in done.stderr
            text = (project / "tables.py").read_text()
            assert "SpikeFn.apply" not in text and "@fgi-elided" not in text
            assert text.count("def layer_") == 6000
        ran = subprocess.run(
            [sys.executable, "-c", COMPARE, str(project)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        outputs.append(ran.stdout)
    assert outputs[0] == outputs[1]


def test_a_big_file_rewritten_in_a_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reduced in a worker process, restored in the main one: the same files as one process."""
    monkeypatch.setattr(parallel, "MIN_WORK", 0)
    pools: list[int] = []
    start = parallel.Workers.__init__

    def counting(self: parallel.Workers, jobs: int, *args: Any) -> None:
        pools.append(jobs)
        start(self, jobs, *args)

    monkeypatch.setattr(parallel.Workers, "__init__", counting)
    written = {}
    for jobs in (1, 2):
        root = tmp_path / str(jobs)
        (root / ".git").mkdir(parents=True)
        (root / "tables.py").write_text(padding("a", 3000) + SURROGATE + padding("z", 3000))
        for i in range(4):
            (root / f"user_{i}.py").write_text(SURROGATE)
        elide.forget()
        report = run([root], Options(jobs=jobs))
        assert not report.internal_errors and len(report.changed) == 5
        written[jobs] = {p.name: p.read_bytes() for p in sorted(root.glob("*.py"))}
    assert pools == [2] and written[1] == written[2]
    assert b"@fgi-elided" not in written[2]["tables.py"]
