"""Every fixture: exact expected output, expected report, idempotence, and for rewritten cases an
executed check that the rewrite gives the same values and gradients as the original."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tests.fixture_cases import (
    EXPECTED_REPORT,
    SOURCE_PATTERNS,
    Case,
    cases,
    copy_inputs,
    report_lines,
    run_case,
)
from tests.nonfinite import same_but_nan_at_nonfinite

CASES = cases()
REWRITTEN = [c for c in CASES if c.rewritten]
# Notebook cases are run cell by cell in fresh interpreters (tests/test_notebook_fixtures.py).
REWRITTEN_MODULES = [c for c in REWRITTEN if not c.notebook]


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
    snapshot = {p: p.read_bytes() for pattern in SOURCE_PATTERNS for p in root.rglob(pattern)}
    report = run_case(root, check=True)
    assert not report.changed
    assert {
        p: p.read_bytes() for pattern in SOURCE_PATTERNS for p in root.rglob(pattern)
    } == snapshot


# ---- executed equivalence -------------------------------------------------------------------

torch = pytest.importorskip("torch")


def top_level_names(case: Case) -> frozenset[str]:
    """Names the fixture's own modules and packages take in ``sys.modules`` (``pkg``, ...)."""
    return frozenset(p.parts[0] if len(p.parts) > 1 else p.stem for p in case.input_files())


@contextmanager
def isolated_import(
    directory: Path, own: frozenset[str], fresh: bool = True
) -> Iterator[ModuleType]:
    """Import ``directory/input.py`` and the project modules beside it, leaving ``sys.modules``
    as it was. ``fresh``: modules already imported under the project's names (the other side of
    the comparison, a leftover of another test) are set aside meanwhile, so that this import
    gets its own ``pkg`` and not a cached one (``fresh=False`` is the old behaviour, kept only to
    show that :func:`assert_separate` catches it)."""

    def owned(name: str) -> bool:
        return name.split(".")[0] in own

    stashed = {n: sys.modules.pop(n) for n in list(sys.modules) if fresh and owned(n)}
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
            if owned(name) or origin.startswith(str(directory)):
                del sys.modules[name]
        sys.modules.update(stashed)


def _namespaces_reached(starts: list[object], roots: tuple[Path, ...]) -> dict[int, Path]:
    """The module namespaces of the project's own files (under one of ``roots``) that ``starts``
    reach through module globals, functions, classes, bound methods and modules: id -> file."""
    found: dict[int, Path] = {}
    seen: set[int] = set()
    pending = list(starts)
    while pending:
        obj = pending.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        namespace: dict[str, object] | None = None
        if isinstance(obj, ModuleType):
            namespace = vars(obj)
        elif isinstance(obj, (staticmethod, classmethod)):
            pending.append(obj.__func__)
        elif inspect.ismethod(obj):
            pending.extend([obj.__func__, obj.__self__])
        elif inspect.isfunction(obj):
            namespace = obj.__globals__
        elif inspect.isclass(obj):
            pending.extend(vars(obj).values())
        if namespace is None or not isinstance(namespace.get("__file__"), str):
            continue
        path = Path(str(namespace["__file__"])).resolve()
        if any(path.is_relative_to(root) for root in roots):
            found[id(namespace)] = path
            pending.extend(namespace.values())
    return found


def assert_separate(
    original: ModuleType, original_dir: Path, rewritten: ModuleType, rewritten_dir: Path
) -> None:
    """The comparison compares two programs: the original's entry point and everything of the
    project it reaches come from the fixture, the rewrite's from the rewritten copy, and they
    share no object (a rewritten ``import pkg`` that reuses the cached original ``pkg`` compares
    the original with itself)."""
    assert original.entry is not rewritten.entry, "original and rewritten entry are one object"
    roots = (original_dir.resolve(), rewritten_dir.resolve())
    reached = {
        side: _namespaces_reached([module, module.entry], roots)
        for side, module in (("original", original), ("rewritten", rewritten))
    }
    for side, directory in (("original", roots[0]), ("rewritten", roots[1])):
        strays = sorted(str(p) for p in reached[side].values() if not p.is_relative_to(directory))
        assert not strays, f"the {side} entry reaches modules of the other side: {strays}"
    shared = set(reached["original"]) & set(reached["rewritten"])
    assert not shared, f"modules shared by both sides: {[reached['original'][i] for i in shared]}"


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


def with_nonfinite(x: torch.Tensor) -> torch.Tensor:
    bad = x.clone()
    bad[0, :3] = torch.tensor([float("inf"), float("-inf"), float("nan")], dtype=x.dtype)
    return bad


@dataclass(frozen=True)
class Outputs:
    """What one side (original or rewrite) computes on the test inputs."""

    module: ModuleType
    value: torch.Tensor
    grads: tuple[torch.Tensor | None, ...]
    no_grad_value: torch.Tensor  # under torch.no_grad()
    plain_value: torch.Tensor  # inputs that do not require grad
    nonfinite_value: torch.Tensor  # ±inf/NaN inputs, with a gradient
    nonfinite_no_grad_value: torch.Tensor


def outputs(directory: Path, own: frozenset[str], x: torch.Tensor) -> Outputs:
    """Import one side alone (the other side's modules are never in ``sys.modules`` meanwhile,
    also for imports done at call time) and run it on ``x``."""
    with isolated_import(directory, own) as module:
        if not hasattr(module, "entry"):
            pytest.skip("fixture has no entry point")
        inputs = make_inputs(module, x, True)
        value = call(module, inputs)
        upstream = torch.randn(
            value.shape, generator=torch.Generator().manual_seed(1), dtype=value.dtype
        )
        grads = torch.autograd.grad(value, inputs, upstream, allow_unused=True)
        with torch.no_grad():
            no_grad_value = call(module, inputs)
        plain_value = call(module, make_inputs(module, x, False))
        bad = with_nonfinite(x)
        nonfinite_value = call(module, make_inputs(module, bad, True))
        with torch.no_grad():
            nonfinite_no_grad_value = call(module, make_inputs(module, bad, False))
    return Outputs(
        module,
        value,
        grads,
        no_grad_value,
        plain_value,
        nonfinite_value,
        nonfinite_no_grad_value,
    )


TOLERANCE = {torch.float32: (1e-5, 1e-6), torch.float64: (1e-10, 1e-12)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", REWRITTEN_MODULES, ids=lambda c: c.name)
def test_rewrite_keeps_values_and_gradients(case: Case, dtype: torch.dtype, tmp_path: Path) -> None:
    root = copy_inputs(case, tmp_path)
    run_case(root)
    x = grid(dtype, torch.Generator().manual_seed(0))
    own = top_level_names(case)
    a = outputs(case.directory, own, x)
    b = outputs(root, own, x)
    assert_separate(a.module, case.directory, b.module, root)
    assert same_values(a.value, b.value), "forward values differ"
    # A float32 forward value (``.float()`` on float64 input) makes grad_output float32, so
    # the original's own gradient is only float32-accurate: compare at that precision.
    precision = torch.float32 if torch.float32 in (dtype, a.value.dtype) else torch.float64
    rtol, atol = TOLERANCE[precision]
    for ga, gb in zip(a.grads, b.grads, strict=True):
        assert (ga is None) == (gb is None)
        if ga is not None:
            assert gb is not None and ga.dtype == gb.dtype and ga.shape == gb.shape
            # Where the original's own gradient is not finite (g overflows), the rewrite's
            # is finite by design (README, "Semantics"); elsewhere they agree.
            finite = torch.isfinite(ga)
            torch.testing.assert_close(gb[finite], ga[finite], rtol=rtol, atol=atol)
            assert bool(torch.isfinite(gb[~finite]).all())
    # Inference paths: no_grad, and inputs that do not require grad, give the same values.
    assert same_values(a.no_grad_value, b.no_grad_value)
    assert same_values(a.plain_value, b.plain_value)
    # Non-finite inputs: NaN where the input is ±inf or NaN (README, "Semantics"), the
    # original's value everywhere else; and exactly the original's without a gradient.
    bad = with_nonfinite(x)
    assert same_but_nan_at_nonfinite(a.nonfinite_value, b.nonfinite_value, [bad]), "non-finite"
    assert same_values(
        a.nonfinite_no_grad_value, b.nonfinite_no_grad_value
    ), "values differ for non-finite inputs under no_grad"


# The cross-file fixtures whose rewrite used to be compared with the original itself (issue 14).
CROSS_FILE = [
    "crossfile_absolute",
    "crossfile_relative",
    "alias_in_plain_module",
    "corpus_helper_from_other_module",
]


@pytest.mark.parametrize("name", CROSS_FILE)
def test_isolation_guard_catches_a_cached_package(name: str, tmp_path: Path) -> None:
    """The old way of importing both sides (the rewrite's ``import pkg`` finds the original's in
    ``sys.modules``) is caught by the guard; importing each side fresh passes it."""
    case = next(c for c in REWRITTEN if c.name == name)
    root = copy_inputs(case, tmp_path)
    run_case(root)
    own = top_level_names(case)
    with isolated_import(case.directory, own) as original:
        with isolated_import(root, own) as rewritten:
            assert_separate(original, case.directory, rewritten, root)
        with isolated_import(root, own, fresh=False) as stale:
            with pytest.raises(AssertionError, match="one object|reaches modules of the other"):
                assert_separate(original, case.directory, stale, root)
