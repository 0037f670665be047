"""Only the top-level statements that may hold a call site are transformed (found with the
stdlib AST); the result must be the same as transforming the whole module."""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst

from fgi_rewrite import Options, run
from fgi_rewrite.project.prefilter import CalleeNames, statements_with_candidates
from tests.sources import DEFINITION

USER = """\
from surrogates import SpikeFn; import torch  # two statements on one line


def untouched(v):
    return torch.sigmoid(v)  # keeps its formatting
x = 1; y = 2


def step(v):
    return SpikeFn.apply(v)


class Layer(torch.nn.Module):
    def forward(self, v):
        return SpikeFn.apply(v * 2)
"""


def test_statements_around_semicolon_lines_are_rewritten(tmp_path: Path) -> None:
    (tmp_path / "surrogates.py").write_text(DEFINITION)
    user = tmp_path / "user.py"
    user.write_text(USER)
    report = run([user], Options(verify="none"))
    assert len([s for r in report.results for s in r.call_sites]) == 2
    text = user.read_text()
    assert "SpikeFn.apply" not in text
    head, _, _ = text.partition("def step")
    assert head == USER.partition("def step")[0]  # nothing before the first call site moved


def sizes(source: str) -> list[int]:
    body = cst.parse_module(source).body
    return [len(s.body) if isinstance(s, cst.SimpleStatementLine) else 1 for s in body]


def test_top_level_statements_align_with_the_stdlib_ast() -> None:
    names = CalleeNames(frozenset({"SpikeFn"}), frozenset())
    wanted = statements_with_candidates(ast.parse(USER), sizes(USER), names)
    # import line (no call site), def untouched, ``x = 1; y = 2``, def step, class Layer
    assert wanted == [False, False, False, True, True]
    assert statements_with_candidates(ast.parse(USER), sizes(USER + "z = 3\n"), names) is None
