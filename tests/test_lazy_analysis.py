"""A run over some files of a project analyzes the Functions of those files, and a Function
defined elsewhere only when one of their call sites needs it (pre-commit passes a few staged files
of what may be a large project)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fgi_rewrite import Options, run
from fgi_rewrite.analysis import analyze as analyze_module
from fgi_rewrite.pipeline import targets as targets_module
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import ClassInfo
from tests.sources import DEFINITION, PLAIN, REFUSED, USER


def project(root: Path) -> Path:
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (root / "surrogates.py").write_text(DEFINITION)
    (root / "user.py").write_text(USER)
    (root / "refused.py").write_text(REFUSED)
    (root / "plain.py").write_text(PLAIN)
    return root


@pytest.fixture
def analyzed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The qualnames analyze() is called with, in order."""
    seen: list[str] = []
    original = analyze_module.analyze

    def recording(index: ProjectIndex, info: ClassInfo, *args: object) -> object:
        seen.append(info.qualname)
        return original(index, info, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(targets_module, "analyze", recording)
    return seen


def test_a_file_without_call_sites_analyzes_nothing(tmp_path: Path, analyzed: list[str]) -> None:
    root = project(tmp_path)
    report = run([root / "plain.py"], Options(check=True))
    assert analyzed == []
    assert not report.internal_errors and not report.diagnostics and not report.results


def test_a_function_elsewhere_is_analyzed_when_a_call_needs_it(
    tmp_path: Path, analyzed: list[str]
) -> None:
    root = project(tmp_path)
    report = run([root / "user.py"], Options(check=True))
    assert analyzed == ["surrogates.SpikeFn"]  # not refused.NormFn
    assert [site.surrogate for r in report.results for site in r.call_sites] == [
        "surrogates.SpikeFn"
    ]
    assert [(f.qualname, f.verdict) for f in report.functions] == [
        ("surrogates.SpikeFn", "surrogate")
    ]
    assert report.surrogates_found == 1


def test_the_same_rewrite_as_a_run_over_the_whole_project(tmp_path: Path) -> None:
    root = project(tmp_path)
    alone = run([root / "user.py"], Options(check=True))
    whole = run([root], Options(check=True))
    by_path = {r.path: r.after for r in whole.results}
    assert [r.after for r in alone.results] == [by_path[root / "user.py"]]
    # refused.py, given there, and its call left (FGI206)
    assert {d.code.code for d in whole.diagnostics} == {"FGI101", "FGI206"}
    assert not alone.diagnostics
