"""Differential fuzzing: random surrogate Functions (tests/fuzz_surrogates.py) are rewritten
(``verify="none"``: this test is the check), and the tool must either refuse the Function with a
code (FGI1xx) or give modules whose values are the original's (same dtype and shape, equal with
NaN-aware ``==``) and whose gradients are equal (rtol 1e-5/atol 1e-6 at float32 precision,
1e-10/1e-12 at float64); a second run (``check=True``) changes nothing.

The original and the rewritten modules are both imported (in isolation, each with its own copy
of any module beside it) and run on a grid that holds exact zeros, ``x`` exactly at the
threshold ``th`` (and at a forward threshold ``vth``), every hyperparameter value, wide normals
and far tails, in float32 and float64; also under ``no_grad``, without ``requires_grad`` and
with ±inf/NaN inputs (values only).

CI runs ``test_fuzz_ci`` (25 derandomized examples, about 20 s); ``pytest -m slow
tests/test_fuzz.py`` runs ``test_fuzz_slow`` (600 derandomized examples, a few minutes).
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, event, given, settings

from fgi_rewrite import Options, run
from fgi_rewrite.core.codes import Severity
from tests.fuzz_surrogates import FILE, Program, programs
from tests.nonfinite import same_but_nan_at_nonfinite

torch = pytest.importorskip("torch")

CHANNELS = 8
TOLERANCE = {torch.float32: (1e-5, 1e-6), torch.float64: (1e-10, 1e-12)}
_counter = itertools.count()


@contextmanager
def isolated(path: Path, beside: tuple[str, ...]) -> Iterator[ModuleType]:
    """Import the module at ``path`` under a unique name (its directory first on sys.path for
    the modules ``beside`` it, which are forgotten afterwards so that the next import finds its
    own)."""
    name = f"fgi_fuzz_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        try:
            spec.loader.exec_module(module)
        finally:
            # Forgotten at once: the other copy, imported next, must find its own.
            sys.path.remove(str(path.parent))
            for other in beside:
                sys.modules.pop(other, None)
        yield module
    finally:
        sys.modules.pop(name, None)


def grid(program: Program, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` of shape (B, C) and ``th`` of shape (C,); rows of ``x`` lie exactly on ``th``."""
    generator = torch.Generator().manual_seed(7)
    th = torch.linspace(-0.5, 0.5, CHANNELS, dtype=torch.float64)
    special = [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1e-8, -1e-8, 3.0, -3.0, 40.0, -40.0, 200.0, -200.0]
    for h in program.hyper_values:
        special += [h, -h, h / 2, -h / 2]
    dense = torch.linspace(-3.0, 3.0, 121, dtype=torch.float64)
    wide = torch.randn(96, generator=generator, dtype=torch.float64) * 4.0
    values = torch.cat([dense, torch.tensor(special, dtype=torch.float64), wide])
    values = torch.cat([values, values.new_zeros(-len(values) % CHANNELS)])
    x = torch.cat([values.reshape(-1, CHANNELS), th[None, :], th[None, :] + 1e-3])
    if program.hyper_values:  # x - vth exactly 0 for a forward threshold
        x = torch.cat(
            [
                x,
                torch.tensor(program.hyper_values, dtype=torch.float64)[:, None].expand(
                    -1, CHANNELS
                ),
            ]
        )
    return x.to(dtype), th.to(dtype)


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and bool(((a == b) | (a.isnan() & b.isnan())).all())
    )


def inputs_of(
    program: Program, x: torch.Tensor, th: torch.Tensor, grad: bool
) -> list[torch.Tensor]:
    tensors = [x.clone().requires_grad_(grad)]
    if program.inputs == 2:
        tensors.append(th.clone().requires_grad_(grad))
    return tensors


def elementwise_gradients(
    original: ModuleType,
    program: Program,
    x: torch.Tensor,
    th: torch.Tensor,
    upstream: torch.Tensor,
) -> list[torch.Tensor]:
    """The original's gradients with a full-shape threshold: one value per element and input."""
    full = [x.clone().requires_grad_(True)]
    if program.inputs == 2:
        full.append(th.expand_as(x).clone().requires_grad_(True))
    return list(torch.autograd.grad(original.entry(*full), full, upstream))


def compare_gradients(
    program: Program,
    grads_a: tuple[torch.Tensor, ...],
    grads_b: tuple[torch.Tensor, ...],
    elementwise: list[torch.Tensor],
    precision: torch.dtype,
    what: str,
) -> list[str]:
    """Equal within tolerance where the original's elementwise gradients are all finite.

    Where one is not, either g itself is not finite there, and the rewrite's injected gradient
    is 0 by design (README, "Semantics of the emitted code"), or g is finite and only
    ``grad_output * g`` overflows, and the rewrite overflows the same way. For the threshold
    (summed over the batch) a channel holding such an element must be the sum of the finite
    contributions, or not finite; with several calls (the list comprehension) another call's
    finite gradient is added, so there the rewrite need only be 0, the original's value, or
    finite. Returns notes (for statistics)."""
    rtol, atol = TOLERANCE[precision]
    finite = torch.stack([g.isfinite() for g in elementwise]).all(0)
    single = "call listcomp" not in program.features
    notes = []
    for i, (name, ga, gb) in enumerate(zip(("x", "th"), grads_a, grads_b, strict=False)):
        label = f"{what}: gradient of {name}"
        assert ga.dtype == gb.dtype and ga.shape == gb.shape, label
        if bool(finite.all()):
            torch.testing.assert_close(
                gb, ga, rtol=rtol, atol=atol, msg=lambda m, label=label: f"{label}: {m}"
            )
            continue
        notes.append("non-finite g")
        if i == 0:  # elementwise: compare element by element
            ok = finite
            torch.testing.assert_close(
                gb[ok], ga[ok], rtol=rtol, atol=atol, msg=lambda m, label=label: f"{label}: {m}"
            )
            bad_b, bad_a = gb[~ok], ga[~ok]
            same = (bad_b == 0) | (bad_b == bad_a)
            if not single:
                same |= bad_b.isfinite()
            assert bool(same.all()), (
                f"{label}: where the original's gradient is not finite the rewrite gives "
                f"{bad_b[~same][:5].tolist()} (original {bad_a[~same][:5].tolist()})"
            )
            continue
        masked = torch.where(finite, elementwise[i], torch.zeros_like(elementwise[i])).sum(0)
        bad = (~finite).any(0)
        torch.testing.assert_close(
            gb[~bad], ga[~bad], rtol=rtol, atol=atol, msg=lambda m, label=label: f"{label}: {m}"
        )
        if single:
            close = torch.isclose(gb[bad], masked[bad], rtol=rtol, atol=atol)
            assert bool((close | ~gb[bad].isfinite()).all()), (
                f"{label}: channels with a non-finite contribution: rewrite "
                f"{gb[bad].tolist()}, sum of the finite contributions {masked[bad].tolist()}"
            )
    return notes


def check_program(program: Program) -> list[str]:
    """Run the property on one program; returns the outcome and notes (for statistics)."""
    # A path that depends only on the source, so that replayed failures read the same.
    digest = hashlib.sha1(program.describe().encode()).hexdigest()[:12]
    temp = Path(tempfile.gettempdir(), f"fgi-fuzz-{os.getpid()}-{digest}")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    try:
        original_dir, rewritten_dir = Path(temp, "original"), Path(temp, "rewritten")
        original_dir.mkdir()
        rewritten_dir.mkdir()
        for directory in (original_dir, rewritten_dir):
            for name, text in ((FILE, program.source), *program.extra):
                (directory / name).write_text(text)
        target = rewritten_dir / FILE
        before = {p.name: p.read_text() for p in rewritten_dir.glob("*.py")}
        report = run([rewritten_dir], Options(verify="none", style=program.style))
        assert not report.internal_errors, report.internal_errors
        assert not report.of(Severity.ERROR), [d.render() for d in report.diagnostics]
        refusals = sorted(
            {d.code.code for d in report.diagnostics if d.code.code.startswith("FGI1")}
        )
        rewritten = {p.name: p.read_text() for p in rewritten_dir.glob("*.py")}
        if rewritten == before:
            assert refusals, "the surrogate was neither rewritten nor refused: " + "; ".join(
                d.render() for d in report.diagnostics
            )
            return ["refused " + ",".join(refusals)]
        # Idempotence: a second run finds nothing to do.
        again = run([rewritten_dir], Options(check=True, verify="none", style=program.style))
        assert not again.changed, "a second run would change the file again"
        assert {p.name: p.read_text() for p in rewritten_dir.glob("*.py")} == rewritten
        beside = tuple(Path(name).stem for name, _ in program.extra)
        with isolated(original_dir / FILE, beside) as a_mod, isolated(target, beside) as b_mod:
            notes = set()
            for dtype in (torch.float32, torch.float64):
                notes.update(compare_modules(program, a_mod, b_mod, dtype))
        outcome = "rewritten" + (" (with refusals " + ",".join(refusals) + ")" if refusals else "")
        return [outcome, *sorted(notes)]
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def compare_modules(
    program: Program, original: ModuleType, rewritten: ModuleType, dtype: torch.dtype
) -> list[str]:
    x, th = grid(program, dtype)
    a_in, b_in = inputs_of(program, x, th, True), inputs_of(program, x, th, True)
    a, b = original.entry(*a_in), rewritten.entry(*b_in)
    assert same_values(a, b), f"{dtype}: forward values differ"
    upstream = torch.randn(a.shape, generator=torch.Generator().manual_seed(3), dtype=a.dtype)
    grads_a = torch.autograd.grad(a, a_in, upstream)
    grads_b = torch.autograd.grad(b, b_in, upstream)
    precision = torch.float32 if torch.float32 in (dtype, a.dtype) else torch.float64
    elementwise = elementwise_gradients(original, program, x, th, upstream)
    notes = compare_gradients(program, grads_a, grads_b, elementwise, precision, str(dtype))
    with torch.no_grad():
        assert same_values(original.entry(*a_in), rewritten.entry(*b_in)), "no_grad values differ"
    plain = inputs_of(program, x, th, False)
    assert same_values(original.entry(*plain), rewritten.entry(*plain)), "values differ (no grad)"
    bad = x.clone()
    bad[0, :3] = torch.tensor([float("inf"), float("-inf"), float("nan")], dtype=dtype)
    a_bad = original.entry(*inputs_of(program, bad, th, True))
    b_bad = rewritten.entry(*inputs_of(program, bad, th, True))
    assert same_but_nan_at_nonfinite(a_bad, b_bad, [bad]), "non-finite inputs"
    with torch.no_grad():
        a_bad = original.entry(*inputs_of(program, bad, th, False))
        b_bad = rewritten.entry(*inputs_of(program, bad, th, False))
    assert same_values(a_bad, b_bad), "values differ for non-finite inputs under no_grad"
    return notes


def _property(program: Program) -> None:
    for feature in program.features:
        event(feature)
    try:
        for outcome in check_program(program):
            event(outcome)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{program.describe()}") from None


_COMMON = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(max_examples=25, **_COMMON)  # type: ignore[arg-type]
@given(programs())
def test_fuzz_ci(program: Program) -> None:
    _property(program)


@pytest.mark.slow
@settings(max_examples=600, **_COMMON)  # type: ignore[arg-type]
@given(programs())
def test_fuzz_slow(program: Program) -> None:
    _property(program)
