"""Every fixture: exact expected output, expected report, idempotence, and for rewritten cases an
executed check that the rewrite gives the same values and gradients as the original."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from tests.fixture_cases import (
    EXPECTED_REPORT,
    Case,
    cases,
    copy_inputs,
    report_lines,
    run_case,
)
from tests.nonfinite import same_but_nan_at_nonfinite

CASES = cases()
REWRITTEN = [c for c in CASES if c.rewritten]


def test_fixture_cases_exist() -> None:
    assert len(CASES) >= 40
    assert len(REWRITTEN) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_rewrite_matches_expected(case: Case, tmp_path: Path) -> None:
    root = copy_inputs(case, tmp_path)
    report = run_case(root)
    for relative in case.input_files():
        expected = case.expected(relative)
        want = expected.read_bytes() if expected else (case.directory / relative).read_bytes()
        got = (root / relative).read_bytes()
        assert got.decode() == want.decode(), f"{relative} differs from its expected rewrite"
    report_file = case.directory / EXPECTED_REPORT
    want_report = report_file.read_text().splitlines() if report_file.exists() else []
    assert report_lines(report, root) == want_report


@pytest.mark.parametrize("case", REWRITTEN, ids=lambda c: c.name)
def test_second_run_changes_nothing(case: Case, tmp_path: Path) -> None:
    root = copy_inputs(case, tmp_path)
    run_case(root)
    snapshot = {p: p.read_bytes() for p in root.rglob("*.py")}
    report = run_case(root, check=True)
    assert not report.changed
    assert {p: p.read_bytes() for p in root.rglob("*.py")} == snapshot


# ---- executed equivalence -------------------------------------------------------------------

torch = pytest.importorskip("torch")


@contextmanager
def isolated_import(directory: Path) -> Iterator[ModuleType]:
    """Import ``directory/input.py`` (and the package beside it) without leaking modules."""
    before = set(sys.modules)
    sys.path.insert(0, str(directory))
    try:
        spec = importlib.util.spec_from_file_location(
            f"fgi_fixture_{abs(hash(directory))}", directory / "input.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(directory))
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if origin.startswith(str(directory)):
                del sys.modules[name]


def grid(dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    """Values around and exactly at 0 and ±0.5 thresholds, wide normals, and far tails."""
    dense = torch.linspace(-3.0, 3.0, 241, dtype=torch.float64)
    special = torch.tensor(
        [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 40.0, -40.0, 200.0, -200.0, 1e-8], dtype=torch.float64
    )
    wide = torch.randn(252, generator=generator, dtype=torch.float64) * 4.0
    values = torch.cat([dense, special, wide]).to(dtype)
    return values.reshape(-1, 8)


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and bool(((a == b) | (a.isnan() & b.isnan())).all())
    )


def call(module: ModuleType, inputs: list[torch.Tensor]) -> torch.Tensor:
    torch.manual_seed(1234)  # stochastic forwards draw the same numbers
    return module.entry(*inputs)


def make_inputs(module: ModuleType, x: torch.Tensor, grad: bool) -> list[torch.Tensor]:
    inputs = [x.clone().requires_grad_(grad)]
    if len(inspect.signature(module.entry).parameters) == 2:
        th = torch.linspace(-0.5, 0.5, x.shape[1], dtype=x.dtype)
        inputs.append(th.requires_grad_(grad))
    return inputs


TOLERANCE = {torch.float32: (1e-5, 1e-6), torch.float64: (1e-10, 1e-12)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", REWRITTEN, ids=lambda c: c.name)
def test_rewrite_keeps_values_and_gradients(case: Case, dtype: torch.dtype, tmp_path: Path) -> None:
    root = copy_inputs(case, tmp_path)
    run_case(root)
    generator = torch.Generator().manual_seed(0)
    x = grid(dtype, generator)
    with isolated_import(case.directory) as original, isolated_import(root) as rewritten:
        if not hasattr(original, "entry"):
            pytest.skip("fixture has no entry point")
        a_in, b_in = make_inputs(original, x, True), make_inputs(rewritten, x, True)
        a, b = call(original, a_in), call(rewritten, b_in)
        assert same_values(a, b), "forward values differ"
        upstream = torch.randn(a.shape, generator=generator, dtype=a.dtype)
        grads_a = torch.autograd.grad(a, a_in, upstream, allow_unused=True)
        grads_b = torch.autograd.grad(b, b_in, upstream, allow_unused=True)
        # A float32 forward value (``.float()`` on float64 input) makes grad_output float32, so
        # the original's own gradient is only float32-accurate: compare at that precision.
        precision = torch.float32 if torch.float32 in (dtype, a.dtype) else torch.float64
        rtol, atol = TOLERANCE[precision]
        for ga, gb in zip(grads_a, grads_b, strict=True):
            assert (ga is None) == (gb is None)
            if ga is not None:
                assert ga.dtype == gb.dtype and ga.shape == gb.shape
                # Where the original's own gradient is not finite (g overflows), the rewrite's
                # is finite by design (README, "Semantics"); elsewhere they agree.
                finite = torch.isfinite(ga)
                torch.testing.assert_close(gb[finite], ga[finite], rtol=rtol, atol=atol)
                assert bool(torch.isfinite(gb[~finite]).all())
        # Inference paths: no_grad, and inputs that do not require grad, give the same values.
        with torch.no_grad():
            assert same_values(call(original, a_in), call(rewritten, b_in))
        plain = make_inputs(original, x, False)
        assert same_values(call(original, plain), call(rewritten, plain))
        # Non-finite inputs: NaN where the input is ±inf or NaN (README, "Semantics"), the
        # original's value everywhere else; and exactly the original's without a gradient.
        bad = x.clone()
        bad[0, :3] = torch.tensor([float("inf"), float("-inf"), float("nan")], dtype=dtype)
        a_bad = call(original, make_inputs(original, bad, True))
        b_bad = call(rewritten, make_inputs(rewritten, bad, True))
        assert same_but_nan_at_nonfinite(a_bad, b_bad, [bad]), "non-finite inputs"
        with torch.no_grad():
            a_bad = call(original, make_inputs(original, bad, False))
            b_bad = call(rewritten, make_inputs(rewritten, bad, False))
        assert same_values(a_bad, b_bad), "values differ for non-finite inputs under no_grad"
