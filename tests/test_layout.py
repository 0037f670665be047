"""Layout never changes the result (issue 15 item 1): every fixture and the example project,
reformatted by black at line length 40 (wrapped calls, magic trailing commas, parenthesized
assignments and returns) or given backslash continuations inside its expressions and
assignments, get the same call sites rewritten and the same diagnostics as written, and the
rewrite of the reformatted source keeps the original's values and gradients."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import black
import libcst as cst
import pytest

from fgi_rewrite import Options, Report, run
from tests.fixture_cases import Case, cases, copy_inputs
from tests.test_examples import EXAMPLES

CASES = cases()


class _Backslashes(cst.CSTTransformer):
    """A backslash continuation before every binary operator and after every ``=``."""

    def leave_BinaryOperation(
        self, original: cst.BinaryOperation, updated: cst.BinaryOperation
    ) -> cst.BinaryOperation:
        before = cst.SimpleWhitespace(" \\\n        ")
        return updated.with_changes(
            operator=updated.operator.with_changes(whitespace_before=before)
        )

    def leave_AssignTarget(
        self, original: cst.AssignTarget, updated: cst.AssignTarget
    ) -> cst.AssignTarget:
        return updated.with_changes(whitespace_after_equal=cst.SimpleWhitespace(" \\\n    "))


def black_40(text: str) -> str:
    return black.format_str(text, mode=black.Mode(line_length=40))


def backslashes(text: str) -> str:
    return cst.parse_module(text).visit(_Backslashes()).code


LAYOUTS: dict[str, Callable[[str], str]] = {"black-40": black_40, "backslash": backslashes}


def relayout(root: Path, layout: str) -> None:
    for path in root.rglob("*.py"):
        original = path.read_text()
        changed = LAYOUTS[layout](original)
        path.write_text(changed)


Outcome = tuple[list[tuple[str, str]], list[tuple[str, str, str]], list[str]]


_LINE_IN_MESSAGE = re.compile(r"(\w\.(?:py|ipynb)):\d+")


def outcome(report: Report, root: Path) -> Outcome:
    """What must not depend on layout: the call sites (by surrogate and style), the diagnostics
    (by file, code and message; lines move, also those a message names: ``meta.py:6``) and the
    internal errors (none)."""
    sites = sorted((s.surrogate, s.style.value) for r in report.results for s in r.call_sites)
    diagnostics = sorted(
        (
            d.location.path.relative_to(root).as_posix(),
            d.code.code,
            _LINE_IN_MESSAGE.sub(r"\1:N", d.message.replace(f"{root}/", "")),
        )
        for d in report.diagnostics
    )
    return sites, diagnostics, report.internal_errors


_as_written: dict[str, Outcome] = {}


def as_written(case: Case, tmp_path: Path) -> Outcome:
    if case.name not in _as_written:
        root = copy_inputs(case, tmp_path / "as-written")
        _as_written[case.name] = outcome(run([root], Options(verify="none")), root)
    return _as_written[case.name]


def test_layouts_change_the_source() -> None:
    """The reformatting the tests rely on really moves things over lines."""
    source = (CASES[0].directory / "input.py").read_text()
    for layout in LAYOUTS.values():
        assert layout(source) != source
    assert "\\\n" in backslashes("y = a + b\n")
    assert black_40("z = spike_function.apply(membrane_potential - threshold)\n").count("\n") > 1


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_layout_gives_the_same_rewrite(case: Case, layout: str, tmp_path: Path) -> None:
    want = as_written(case, tmp_path)
    root = copy_inputs(case, tmp_path / layout)
    relayout(root, layout)
    report = run([root], Options(verify="none"))
    assert outcome(report, root) == want
    if not case.rewritten or case.notebook:  # notebooks: their modules are reformatted only
        return
    for result in report.results:
        compile(result.after, str(result.path), "exec")  # the rewrite of any layout parses
    _keeps_values_and_gradients(case, root)


def _keeps_values_and_gradients(case: Case, root: Path) -> None:
    torch = pytest.importorskip("torch")
    from tests.test_fixtures import (  # torch is needed to import them
        TOLERANCE,
        grid,
        outputs,
        same_values,
        top_level_names,
    )

    x = grid(torch.float64, torch.Generator().manual_seed(0))
    own = top_level_names(case)
    a = outputs(case.directory, own, x)
    b = outputs(root, own, x)
    assert same_values(a.value, b.value), "forward values differ"
    precision = torch.float32 if a.value.dtype == torch.float32 else torch.float64
    rtol, atol = TOLERANCE[precision]
    for ga, gb in zip(a.grads, b.grads, strict=True):
        assert (ga is None) == (gb is None)
        if ga is not None and gb is not None:
            finite = torch.isfinite(ga)
            torch.testing.assert_close(gb[finite], ga[finite], rtol=rtol, atol=atol)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_example_project_in_any_layout(layout: str, tmp_path: Path) -> None:
    """The example project: the same two call sites and diagnostics, and its surrogates pass the
    gradient check of the verification."""
    plain = tmp_path / "plain"
    shutil.copytree(EXAMPLES, plain, ignore=shutil.ignore_patterns("__pycache__"))
    want = outcome(run([plain], Options(verify="none")), plain)
    root = tmp_path / layout
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("__pycache__"))
    relayout(root, layout)
    report = run([root], Options(verify="grad"))
    assert outcome(report, root) == want
    assert len(want[0]) == 2
    verdicts = {v.name: dict(v.checks).get("grad") for v in report.verifications}
    assert verdicts and set(verdicts.values()) == {"ok"}, verdicts
