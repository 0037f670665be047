"""Higher-order gradients: the project scan (project/higher_order.py), the exact form it selects
(rewrite/emit.exact_injection), the option that forces it, the notes, and executed checks that
the exact form gives the original's second derivatives (and forward-mode tangents) where the
fast form gives none; the verification child compares second derivatives and refuses what it
cannot match."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import fgi_rewrite.pipeline.run as run_module
from fgi_rewrite import Options, run
from fgi_rewrite.cli import main
from fgi_rewrite.core import codes
from fgi_rewrite.core.model import Form
from fgi_rewrite.pipeline.targets import form_choice
from fgi_rewrite.project.higher_order import HigherOrderUses, scan_project, uses_in
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.rewrite import emit
from tests.fixture_cases import FIXTURES, Case, cases, copy_inputs, run_case

HAS_TORCH = importlib.util.find_spec("torch") is not None  # found, not imported
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


def found(source: str) -> list[tuple[int, str, bool]]:
    return [
        (u.location.line, u.what, u.forward_mode) for u in uses_in(ast.parse(source), Path("t.py"))
    ]


# ---- the scan --------------------------------------------------------------------------------


def test_create_graph_in_any_spelling_counts() -> None:
    source = """\
import torch
from torch.autograd import grad as agrad
def step(loss, x, flag):
    torch.autograd.grad(loss, x, create_graph=True)
    agrad(loss, x, None, True, True)
    loss.backward(None, True, True)
    loss.backward(create_graph=flag)
    torch.autograd.backward([loss], None, None, True)
"""
    assert [line for line, _, _ in found(source)] == [4, 5, 6, 7, 8]
    assert found(source)[0][1] == "torch.autograd.grad(create_graph=True)"


def test_first_order_code_does_not_count() -> None:
    source = '''\
"""create_graph=True would be needed for a penalty"""
import torch
from torch.func import functional_call, vmap, stack_module_state
def step(loss, x, net, params):
    # torch.autograd.grad(loss, x, create_graph=True)
    torch.autograd.grad(loss, x, create_graph=False, retain_graph=True)
    loss.backward(retain_graph=True)
    loss.backward(None, True, None)
    SURROGATES[kind].backward(x, grad, alpha)
    Trainer(strategy=args.strategy)
    return functional_call(net, params, (x,)), vmap(torch.sin)(x)
'''
    assert found(source) == []


def test_transforms_through_aliases_and_forward_mode() -> None:
    source = """\
import torch.autograd.functional as AF
from torch import func
from torch.func import hessian as H, grad
import functorch
import torch.autograd.forward_ad as fwAD
def curvature(f, x, v):
    AF.hvp(f, x, v)
    AF.jacobian(f, x, create_graph=True)
    AF.jacobian(f, x, vectorize=True, strategy="forward-mode")
    func.jacrev(f)(x)
    functorch.jvp(f, (x,), (v,))
    torch.autograd.gradgradcheck(f, (x,))
    return grad(f)(x)
"""
    uses = found(source)
    assert (3, "torch.func.hessian", True) in uses and (3, "torch.func.grad", False) in uses
    assert (5, "import torch.autograd.forward_ad", True) in uses
    assert (7, "torch.autograd.functional.hvp", False) in uses
    assert (8, "torch.autograd.functional.jacobian(create_graph=True)", False) in uses
    assert (9, "torch.autograd.functional.jacobian(strategy='forward-mode')", True) in uses
    assert (10, "torch.func.jacrev", False) in uses
    assert (11, "functorch.jvp", True) in uses
    assert (12, "torch.autograd.gradgradcheck", False) in uses
    assert (13, "torch.func.grad", False) in uses


def test_the_text_prefilter_keeps_every_use(tmp_path: Path) -> None:
    """The substring prefilter never drops a file with a use (positional create_graph included)
    and drops look-alikes (``torch.functional``, ``feed_forward_adjoint``)."""
    sources = {
        "positional.py": "def step(loss):\n    loss.backward(None, True, (True))\n",
        "nested.py": "import torch\ntorch.autograd.grad(f(a, b), [x], None, True, True)\n",
        "first_order.py": "import torch\ntorch.autograd.grad(loss, x)\nloss.backward()\n",
        "lookalike.py": "from norse.torch.functional import lif\nfeed_forward_adjoint = 1\n",
        "alias.py": "from torch import func as F\nF.jacrev(f)\n",
    }
    for name, text in sources.items():
        (tmp_path / name).write_text(text)
    paths = [tmp_path / name for name in sources]
    uses = scan_project(ProjectIndex(tmp_path, paths), paths)
    assert sorted(u.location.path.name for u in uses.uses) == [
        "alias.py",
        "nested.py",
        "positional.py",
    ]


def test_a_use_marked_fgi_skip_is_not_counted(tmp_path: Path) -> None:
    project = _project(tmp_path, penalty="torch.autograd.grad(loss, x, create_graph=True)")
    assert "_fgi_v_mid" in _rewritten(project)
    project = _project(
        tmp_path / "skip", penalty="torch.autograd.grad(loss, x, create_graph=True)  # fgi: skip"
    )
    assert "_fgi_v_mid" not in _rewritten(project) and "_fgi_v_detached" in _rewritten(project)


def test_form_choice() -> None:
    reverse = HigherOrderUses(tuple(uses_in(ast.parse("f(x, create_graph=True)"), Path("a.py"))))
    forward = HigherOrderUses(tuple(uses_in(ast.parse("torch.func.jvp(f, x, t)"), Path("a.py"))))
    assert form_choice(HigherOrderUses(), False, Path(".")).form is Form.FAST
    assert form_choice(HigherOrderUses(), True, Path(".")).form is Form.EXACT
    assert form_choice(reverse, False, Path(".")).form is Form.EXACT
    chosen = form_choice(forward, False, Path("."))
    assert chosen.form is Form.EXACT_FORWARD_MODE
    assert chosen.forward_mode_use == "a.py:1: torch.func.jvp"


# ---- the emitted form --------------------------------------------------------------------------

SPIKE = """\
import torch


class Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).type_as(v)

    @staticmethod
    def backward(ctx, grad_output):
        (v,) = ctx.saved_tensors
        return grad_output / (1.0 + 10.0 * v.abs()) ** 2


class Straight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        return (v > 0).type_as(v)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


def entry(x):
    return Spike.apply(x) + Straight.apply(x)
"""


def _project(directory: Path, penalty: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "input.py").write_text(SPIKE)
    if penalty:
        (directory / "train.py").write_text(
            f"import torch\n\n\ndef step(loss, x):\n    {penalty}\n"
        )
    return directory


def _rewritten(project: Path, **options: Any) -> str:
    run([project], Options(**options))
    return (project / "input.py").read_text()


def test_without_higher_order_use_the_fast_form_stays(tmp_path: Path) -> None:
    text = _rewritten(_project(tmp_path))
    assert "_fgi_v_mid" not in text and "_fgi_v_delta" not in text
    assert "if torch.is_grad_enabled() and x.requires_grad:" in text


def test_the_exact_form_evaluates_g_at_the_midpoint(tmp_path: Path) -> None:
    text = _rewritten(_project(tmp_path, "torch.autograd.grad(loss, x, create_graph=True)"))
    assert "_fgi_v_delta = x - _fgi_v_detached\n" in text
    assert "_fgi_v_mid = x - 0.5 * _fgi_v_delta\n" in text
    assert "1.0 / (1.0 + 10.0 * _fgi_v_mid.abs()) ** 2, 0.0, 0.0, 0.0" in text
    assert "torch.addcmul(_fgi_out.detach(), _fgi_v_delta, _fgi_v_grad)" in text
    # A literal g (straight-through) has no midpoint to evaluate: no unused temporary.
    assert text.count(" - 0.5 * ") == 1
    assert "(_fgi_out_1.detach() + (_fgi_v_delta_1)).to(_fgi_out_1.dtype)" in text


def test_forward_mode_guards_on_grad_mode_only(tmp_path: Path) -> None:
    text = _rewritten(_project(tmp_path, "torch.func.jvp(loss, (x,), (x,))"))
    assert "    if torch.is_grad_enabled():\n" in text and "requires_grad" not in text


def test_notes_say_why_and_the_option_forces_the_form(tmp_path: Path) -> None:
    report = run([_project(tmp_path / "a", "x.backward(create_graph=True)")], Options())
    notes = [d for d in report.diagnostics if d.code is codes.ExactFormForHigherOrder]
    assert [d.subject.rsplit(".", 1)[-1] for d in notes] == ["Spike", "Straight"]
    assert "train.py:5: x.backward(create_graph=True)" in notes[0].message
    project = _project(tmp_path / "b")
    report = run([project], Options(exact_higher_order=True))
    assert {d.code for d in report.diagnostics} == {codes.ExactFormRequested}
    assert "_fgi_v_mid" in (project / "input.py").read_text()


def test_option_on_the_command_line_and_in_the_configuration(tmp_path: Path) -> None:
    runner = CliRunner()
    flagged = _project(tmp_path / "flag")
    result = runner.invoke(main, ["-v", "--verify", "none", "--exact-higher-order", str(flagged)])
    assert result.exit_code == 0, result.output
    assert "FGI402" in result.output and "_fgi_v_mid" in (flagged / "input.py").read_text()
    configured = _project(tmp_path / "config")
    (configured / "pyproject.toml").write_text("[tool.fgi-rewrite]\nexact-higher-order = true\n")
    result = runner.invoke(main, ["--verify", "none", str(configured)])
    assert result.exit_code == 0, result.output
    assert "_fgi_v_mid" in (configured / "input.py").read_text()


# ---- executed: second derivatives of the rewritten fixtures --------------------------------------

EXACT_CASES = [
    c for c in cases() if c.name.startswith("higher_order_") and c.name != "higher_order_absent"
]


def _second_derivatives(directory: Path, case: Case, dtype: Any) -> list[Any]:
    import torch

    from tests.test_fixtures import grid, isolated_import, make_inputs, top_level_names

    with isolated_import(directory, top_level_names(case)) as module:
        x = grid(dtype, torch.Generator().manual_seed(0))
        inputs = make_inputs(module, x, True)
        value = module.entry(*inputs)
        upstream = torch.randn(value.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
        first = torch.autograd.grad(value, inputs, upstream, create_graph=True, allow_unused=True)
        weights = [
            torch.randn(g.shape, generator=torch.Generator().manual_seed(2)).to(dtype)
            for g in first
        ]
        total = sum((g * w).sum() for g, w in zip(first, weights, strict=True) if g.requires_grad)
        if not isinstance(total, torch.Tensor):
            return [None for _ in inputs]
        return list(torch.autograd.grad(total, inputs, allow_unused=True))


def _assert_same_second_derivatives(original: list[Any], rewritten: list[Any], dtype: Any) -> None:
    import torch

    rtol, atol = (1e-5, 1e-6) if dtype == torch.float32 else (1e-10, 1e-12)
    for a, b in zip(original, rewritten, strict=True):
        assert (a is None) == (b is None) or not bool((a if b is None else b).any())
        if a is not None and b is not None:
            finite = torch.isfinite(a)
            torch.testing.assert_close(b[finite], a[finite], rtol=rtol, atol=atol)


@needs_torch
@pytest.mark.parametrize("style", ["inline", "function"])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("case", EXACT_CASES, ids=lambda c: c.name)
def test_exact_form_has_the_original_second_derivatives(
    case: Case, dtype_name: str, style: str, tmp_path: Path
) -> None:
    import torch

    dtype = getattr(torch, dtype_name)
    root = copy_inputs(case, tmp_path)
    run_case(root, style=style)
    original = _second_derivatives(case.directory, case, dtype)
    rewritten = _second_derivatives(root, case, dtype)
    assert any(g is not None and bool(g.any()) for g in original), "no second derivative"
    _assert_same_second_derivatives(original, rewritten, dtype)


@needs_torch
def test_the_fast_form_fails_that_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the scan (the fast form, as before), the second derivative is lost: the check
    above can fail."""
    import torch

    monkeypatch.setattr(run_module, "scan_project", lambda index, paths: HigherOrderUses())
    case = next(c for c in EXACT_CASES if c.name == "higher_order_penalty")
    root = copy_inputs(case, tmp_path)
    run_case(root)
    assert "_fgi_v_mid" not in (root / "input.py").read_text()
    original = _second_derivatives(case.directory, case, torch.float64)
    rewritten = _second_derivatives(root, case, torch.float64)
    with pytest.raises(AssertionError):
        _assert_same_second_derivatives(original, rewritten, torch.float64)


@needs_torch
def test_forward_mode_tangent_is_the_surrogate_gradient(tmp_path: Path) -> None:
    """torch.func.jvp through the rewrite gives g times the tangent, also for an input that does
    not require grad; the Function with its own jvp kept its call."""
    import torch

    from tests.test_fixtures import isolated_import, top_level_names

    case = next(c for c in EXACT_CASES if c.name == "higher_order_forward_mode")
    root = copy_inputs(case, tmp_path)
    run_case(root)
    assert "SpikeWithJvp.apply(x)" in (root / "input.py").read_text()
    x = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)
    with isolated_import(root, top_level_names(case)) as module:
        _, tangent = torch.func.jvp(module.entry, (x,), (torch.ones_like(x),))
    expected = torch.exp(-2.0 * x.abs()) + 0.5 * torch.exp(-x.abs())
    torch.testing.assert_close(tangent, expected)


# ---- the verification child --------------------------------------------------------------------

REFUSED = """\
import torch


class Symmetric(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, th):
        ctx.save_for_backward(x, th)
        return (x - th > 0).type_as(x)

    @staticmethod
    def backward(ctx, go):
        x, th = ctx.saved_tensors
        s = 1.0 / (1.0 + 5.0 * (x - th).abs()) ** 2
        return go * s, -go * s


class Asymmetric(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, th):
        ctx.save_for_backward(x, th)
        return (x - th > 0).type_as(x)

    @staticmethod
    def backward(ctx, go):
        x, th = ctx.saved_tensors
        s = 1.0 / (1.0 + 5.0 * (x - th).abs()) ** 2
        return go * s, -2.0 * go * s


class NotDifferentiable(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).type_as(x)

    @staticmethod
    def backward(ctx, go):
        (x,) = ctx.saved_tensors
        with torch.no_grad():
            s = 1.0 / (1.0 + 5.0 * x.abs()) ** 2
        return go * s


def f(v, th):
    return Symmetric.apply(v, th) + Asymmetric.apply(v, th) + NotDifferentiable.apply(v)


def penalty(loss, x):
    return torch.autograd.grad(loss, x, create_graph=True)
"""


@needs_torch
def test_verification_refuses_what_the_exact_form_cannot_match(tmp_path: Path) -> None:
    """A backward that is not the gradient of anything (asymmetric mixed second derivatives) or
    that leaves autograd (no_grad) has second derivatives no rewrite can give: refused, with
    the reason; the symmetric one is written."""
    (tmp_path / "surr.py").write_text(REFUSED)
    report = run([tmp_path], Options(verify="grad"))
    refused = {
        d.message.split(":", 1)[0]: d.message
        for d in report.diagnostics
        if d.code is codes.VerificationFailed
    }
    assert set(refused) == {"Asymmetric", "NotDifferentiable"}
    assert all("second derivative (create_graph=True)" in m for m in refused.values())
    assert "the original gives none" in refused["NotDifferentiable"]
    text = (tmp_path / "surr.py").read_text()
    assert "Symmetric.apply" not in text.replace("Asymmetric.apply", "")
    assert "Asymmetric.apply(v, th)" in text and "NotDifferentiable.apply(v)" in text


def test_the_exact_form_keeps_a_parameter_hyperparameter_without_grad() -> None:
    """The exact form keeps g differentiable; a hyperparameter g reads that may be a tensor (an
    nn.Parameter the original's backward gives None) is cut from autograd where it is one, so
    that its .grad stays None (verification checks it as one: test_exact_fixtures_verify)."""
    text = (FIXTURES / "higher_order_runtime_branch" / "expected.py").read_text()
    assert "_fgi_width.detach() if isinstance(_fgi_width, torch.Tensor) else _fgi_width" in (
        " ".join(text.split()).replace("( ", "(").replace(" )", ")")
    )


@needs_torch
@pytest.mark.parametrize("case", EXACT_CASES, ids=lambda c: c.name)
def test_exact_fixtures_verify(case: Case, tmp_path: Path) -> None:
    """The verification child accepts every exact-form fixture (second derivatives included)
    and TorchScript saves it; the files are exactly their expected rewrite."""
    root = copy_inputs(case, tmp_path)
    report = run([root], Options(verify="script"))
    failed = [d.render() for d in report.diagnostics if d.code.severity.value == "refusal"]
    assert failed == [d for d in failed if "FGI403" in d]  # the Function with its own jvp
    for verdict in report.verifications:
        assert verdict.checks == (("grad", "ok"), ("script", "ok")), verdict.line()
    for relative in case.input_files():
        expected = case.expected(relative)
        if expected is not None:
            assert (root / relative).read_text() == expected.read_text()


@needs_torch
def test_verification_catches_a_wrong_midpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's second-derivative comparison can fail: a midpoint with derivative 0 (g at the
    detached input, the fast form's second derivative) is refused."""
    real = emit.exact_injection

    def wrong(*args: Any, **kwargs: Any) -> list[str]:
        return [line.replace(" - 0.5 * ", " - 1.0 * ") for line in real(*args, **kwargs)]

    monkeypatch.setattr(emit, "exact_injection", wrong)
    project = _project(tmp_path, "torch.autograd.grad(loss, x, create_graph=True)")
    report = run([project], Options(verify="grad"))
    failed = [d for d in report.diagnostics if d.code is codes.VerificationFailed]
    assert [d.message.split(":", 1)[0] for d in failed] == ["Spike"]
    assert "second derivative" in failed[0].message
