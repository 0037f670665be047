"""After a run every use of a surrogate that is left as it is has a line (FGI206), so that "0 call
sites left" can be trusted (issue 15): uses of a Function verification refused, uses another
line already explains (none then), and the FGI003 note of a surrogate whose uses are left."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import libcst as cst
import pytest

import fgi_rewrite.pipeline.targets as targets_module
from fgi_rewrite import Options, run
from fgi_rewrite.analysis.analyze import analyze as real_analyze
from fgi_rewrite.core.model import Surrogate
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import ClassInfo

needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is not installed"
)

SPIKES = """\
import torch


class SigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(4.0 * x)
        return grad_output * s * (1.0 - s)


spike = SigmoidSpike.apply


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fire = SigmoidSpike.apply

    def forward(self, v):
        return self.fire(v)
"""

LOOP = """\
from spikes import Layer, spike


def step(layer, v):
    return layer.fire(v) + spike(v - 1.0)
"""


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("")
    (root / "spikes.py").write_text(SPIKES)
    (root / "loop.py").write_text(LOOP)
    return root


def codes(report: Any) -> list[tuple[str, str, int]]:
    return sorted((d.code.code, d.location.path.name, d.location.line) for d in report.diagnostics)


def test_an_alias_reached_through_a_parameter_is_reported(tmp_path: Path) -> None:
    root = project(tmp_path)
    report = run([root], Options(verify="none", diff=True))
    assert codes(report) == [("FGI206", "loop.py", 5)]
    (left,) = report.diagnostics
    assert "'fire' is SigmoidSpike.apply in Layer" in left.message
    assert "'layer' is a parameter" in left.message
    assert len([s for r in report.results for s in r.call_sites]) == 2  # the two others


def test_no_use_left_means_no_line(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "loop.py").write_text(
        LOOP.replace("def step(layer, v):", "def step(v):\n    layer = Layer()")
    )
    report = run([root], Options(verify="none", diff=True))
    assert codes(report) == []


def test_the_surrogate_of_a_use_left_is_not_without_call_site(tmp_path: Path) -> None:
    """Only the use through a parameter is in the files given: the surrogate has a use (left),
    so no FGI003 "no call site" note, and the use has its line."""
    root = project(tmp_path)
    (root / "loop.py").write_text("def step(layer, v):\n    return layer.fire(v)\n")
    (root / "spikes.py").write_text(
        SPIKES.replace("        return self.fire(v)", "        return v")
    )
    report = run([root], Options(verify="none", diff=True))
    assert codes(report) == [("FGI206", "loop.py", 2)]


@needs_torch
def test_uses_of_a_surrogate_verification_refuses_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong extraction (the sign of g lost) is caught by verification (FGI301); each call site
    it leaves gets its line, at the call."""

    def wrong(index: ProjectIndex, info: ClassInfo) -> Any:
        result = real_analyze(index, info)
        assert isinstance(result, Surrogate)
        g = cst.Module([]).code_for_node(result.grads[0])  # type: ignore[arg-type]
        return dataclasses.replace(result, grads=(cst.parse_expression(f"-({g})"),))

    monkeypatch.setattr(targets_module, "analyze", wrong)
    root = project(tmp_path)
    (root / "loop.py").write_text(
        LOOP.replace("def step(layer, v):", "def step(v):\n    layer = Layer()")
    )
    report = run([root], Options(verify="grad", diff=True))
    assert not report.changed
    left = [d for d in report.diagnostics if d.code.code == "FGI206"]
    assert sorted((d.location.path.name, d.location.line) for d in left) == [
        ("loop.py", 6),
        ("loop.py", 6),
        ("spikes.py", 26),
    ]
    assert all("its rewrite is refused (FGI301" in d.message for d in left)
