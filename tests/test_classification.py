"""Which Functions are refused and which are notes (issue 15: a project without surrogates passes
``--check``; a surrogate the tool cannot read is never a silent note). The rule is read from the
source alone (``analysis/shape.py``): a forward that thresholds, no extension kernel, and a
backward returning ``grad_output`` times something per input."""

from __future__ import annotations

import importlib.util
import shutil
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from fgi_rewrite import Options, run
from fgi_rewrite.analysis import shape
from fgi_rewrite.core.codes import Severity
from fgi_rewrite.project.index import ProjectIndex


def _backward_scales(body: str) -> bool:
    source = "def backward(ctx, grad_output):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    module = cst.parse_module(source)
    func = module.body[0]
    assert isinstance(func, cst.FunctionDef)
    index = ProjectIndex(Path("."), [])
    info = type("M", (), {})()  # resolution is only needed for helper calls
    return shape.scales_grad_output(index, (func, info))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        "return grad_output * torch.exp(-x.abs())",
        "return -grad_output / (1 + x.abs()) ** 2, None",
        "g = grad_output.clone()\ng[x.abs() > 0.5] = 0\nreturn g",
        "return torch.where(x.abs() < 1, grad_output, torch.zeros_like(grad_output)), None",
        "gi = None\nif ctx.needs_input_grad[0]:\n    gi = grad_output * sg\nreturn gi, None",
        # surrogates whose gradient cannot be injected: still the shape, so they are reported
        "pooled = grad_output.sum(dim=1, keepdim=True)\nreturn pooled * torch.exp(-x.abs())",
        "return (grad_output @ mix) * torch.exp(-x.abs())",
        "return grad_output ** 2 * torch.exp(-x.abs())",
        "return grad_output * torch.exp(-x.abs()) + 1",
    ],
)
def test_backward_with_the_surrogate_shape(body: str) -> None:
    assert _backward_scales(body)


@pytest.mark.parametrize(
    "body",
    [
        "return grad_output.mm(weight), grad_output.t().mm(x), grad_output.sum(0)",
        "centered = grad_output - grad_output.mean(0, keepdim=True)\nreturn centered / std, None",
        "grad_input = torch.batch_norm_backward_elemt(grad_output, x, mean, invstd)\n"
        "return grad_input, None",
        "return None, None",
        "raise NotImplementedError",
    ],
)
def test_backward_without_the_surrogate_shape(body: str) -> None:
    assert not _backward_scales(body)


@pytest.mark.parametrize(
    "source, step",
    [
        ("return (x > 0).float()", True),
        ("return torch.heaviside(x, x.new_zeros(()))", True),
        ("out = x.mm(w.t())\nif bias is not None:\n    out += bias\nreturn out", False),
        ("if x.dim() != 4:\n    raise ValueError\nreturn x * 2", False),
        ("if mode == 'train':\n    return x\nreturn x * 0", False),
        ("if len(x.shape) > 1 and x.shape[1] == c:\n    return x\nreturn x", False),
    ],
)
def test_forward_thresholds(source: str, step: bool) -> None:
    func = cst.parse_module(
        "def forward(ctx, x, w=None, bias=None, mode=None, c=1):\n"
        + textwrap.indent(source, "    ")
        + "\n"
    ).body[0]
    assert isinstance(func, cst.FunctionDef)
    assert shape.looks_like_step(func) is step


def test_abstract_methods() -> None:
    def parsed(body: str) -> cst.FunctionDef:
        func = cst.parse_module(f"def backward(ctx, g):\n{textwrap.indent(body, '    ')}\n").body[0]
        assert isinstance(func, cst.FunctionDef)
        return func

    assert shape.is_abstract(parsed("raise NotImplementedError"))
    assert shape.is_abstract(parsed('"""Subclasses say."""\nraise NotImplementedError("no")'))
    assert not shape.is_abstract(parsed("return g"))
    assert not shape.is_abstract(parsed("if g is None:\n    raise NotImplementedError\nreturn g"))


def test_torch_nn_sources_pass_check(tmp_path: Path) -> None:
    """A copy of torch.nn (custom Functions: SyncBatchNorm, CrossMapLRN2d, BackwardHookFunction,
    the parallel and expanded-weights plumbing: 14 in torch 2.13) has no surrogate: nothing
    refused, exit 0 (it gave 2 refusals)."""
    spec = importlib.util.find_spec("torch")  # the sources only, torch itself is not imported
    if spec is None or spec.origin is None:
        pytest.skip("torch is not installed")
    root = tmp_path / "project"
    shutil.copytree(
        Path(spec.origin).parent / "nn", root / "nn", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "pyproject.toml").write_text("")
    report = run([root], Options(check=True, verify="none"))
    assert not report.of(Severity.REFUSAL), [d.render() for d in report.of(Severity.REFUSAL)]
    assert not report.changed and report.exit_code() == 0
    assert len(report.functions) >= 10  # the Functions were read, and are notes
