"""Imports inside function bodies bind names for that function: a Function imported there is
resolved at its call sites, a local import shadows a module-level one, and a class defined in a
function sees the function's imports as its bases' names (when every function agrees)."""

from __future__ import annotations

from pathlib import Path

from fgi_rewrite import Options, run
from fgi_rewrite.core.codes import UnresolvedCallSite
from fgi_rewrite.pipeline.report import Report
from tests.sources import DEFINITION, REFUSED


def surrogates_called(report: Report) -> list[str]:
    return [site.surrogate for r in report.results for site in r.call_sites]


def test_a_local_import_shadows_the_module_level_one(tmp_path: Path) -> None:
    (tmp_path / "surrogates.py").write_text(DEFINITION)
    (tmp_path / "refused.py").write_text(REFUSED)
    (tmp_path / "user.py").write_text(
        "from refused import NormFn as Fn\n\n\n"
        "def step(v):\n"
        "    from surrogates import SpikeFn as Fn\n\n"
        "    return Fn.apply(v)\n\n\n"
        "def other(v):\n"
        "    return Fn.apply(v)\n"
    )
    report = run([tmp_path / "user.py"], Options(check=True))
    assert surrogates_called(report) == ["surrogates.SpikeFn"]
    assert not [d for d in report.diagnostics if d.code is UnresolvedCallSite]


def test_a_name_imported_and_assigned_in_one_function_is_not_resolved(tmp_path: Path) -> None:
    (tmp_path / "surrogates.py").write_text(DEFINITION)
    (tmp_path / "user.py").write_text(
        "import torch\n\n\n"
        "def step(v, other):\n"
        "    from surrogates import SpikeFn\n"
        "    SpikeFn = other\n"
        "    return SpikeFn.apply(v)\n"
    )
    report = run([tmp_path / "user.py"], Options(check=True))
    assert surrogates_called(report) == []
    assert [d.code for d in report.diagnostics] == [UnresolvedCallSite]


LOCAL_CLASS = """\
def fire(v):
    import {torch}

    class Step(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).float()

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output / (1.0 + x.abs()) ** 2

    return Step.apply(v)
"""


def test_a_class_defined_in_a_function_sees_the_functions_import(tmp_path: Path) -> None:
    (tmp_path / "local.py").write_text(LOCAL_CLASS.format(torch="torch"))
    report = run([tmp_path / "local.py"], Options(check=True))
    assert surrogates_called(report) == ["local.fire.<locals>.Step"]


def test_functions_that_import_a_name_differently_resolve_nothing(tmp_path: Path) -> None:
    source = LOCAL_CLASS.format(torch="torch") + "\n\ndef other():\n    import numpy as torch\n"
    (tmp_path / "local.py").write_text(source)
    report = run([tmp_path / "local.py"], Options(check=True))
    assert surrogates_called(report) == []
    assert report.surrogates_found == 0
