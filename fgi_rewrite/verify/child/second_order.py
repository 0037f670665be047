"""Second derivatives of a rewrite in the exact form (README, "Higher-order gradients"),
compared with the original's; loaded by ``child/checks`` by path, like ``compare``.

The first derivative is taken with ``create_graph=True`` and a random upstream gradient, then
differentiated again after a random projection (``sum(w_i * dL/dx_i)``), which covers every
mixed second derivative of several differentiable inputs at once. The comparison is
``compare.compare_gradient``'s, at the gradient check's tolerance for the dtype: where the
original's second derivative is not finite (``g`` overflows) the rewrite may give 0 there.
``torch`` and ``compare`` are bound by the child after it imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

torch: Any = None  # bound by checks.main()
compare: Any = None  # the compare module, bound by checks


def check(
    checker: Any,
    candidate: Any,
    tensors: Sequence[Any],
    config: dict[str, Any],
    precision: str,
    generator: Any,
) -> None:
    """Raise Mismatch unless the rewrite's second derivatives equal the original's at these
    inputs. An original whose backward cannot be differentiated again (``@once_differentiable``,
    a backward that leaves autograd) raises there; that is noted, not held against the rewrite."""
    a_in = checker.arguments(tensors, config, True)
    b_in = checker.arguments(tensors, config, True)
    a = checker.call(checker.original, a_in, "original")
    b = checker.call(candidate, b_in, "rewrite")
    if not a.requires_grad:
        return
    upstream = torch.randn(a.shape, generator=generator, dtype=torch.float64).to(a.dtype)
    inputs_a = [a_in[i] for i in checker.diff]
    inputs_b = [b_in[i] for i in checker.diff]
    try:
        first_a = torch.autograd.grad(a, inputs_a, upstream, create_graph=True, allow_unused=True)
    except Exception as exc:
        checker.notes.add(f"second derivatives not compared: {_raised('backward', exc)}")
        return
    try:
        first_b = torch.autograd.grad(b, inputs_b, upstream, create_graph=True, allow_unused=True)
    except Exception as exc:
        raise compare.Mismatch(f"second derivative: {_raised('backward', exc)}") from None
    weights = _weights(first_a, first_b, generator)
    try:
        second_a = _projected_derivative(first_a, inputs_a, weights)
    except Exception as exc:
        checker.notes.add(f"second derivatives not compared: {_raised('double backward', exc)}")
        return
    try:
        second_b = _projected_derivative(first_b, inputs_b, weights)
    except Exception as exc:
        raise compare.Mismatch(f"second derivative: {_raised('double backward', exc)}") from None
    named = checker.named(a_in)
    for i, x, y in zip(checker.diff, second_a, second_b, strict=True):
        name = checker.params[i]["name"]
        try:
            compare.compare_gradient(name, x, y, precision, named, checker.notes)
        except compare.Mismatch as exc:
            raise compare.Mismatch(f"second derivative (create_graph=True): {exc}") from None


def against_eager(checker: Any, compiled: Any, eager: Any, dtype_name: str) -> None:
    """Note where the second derivatives of ``compiled`` (a TorchScript-loaded module) differ
    from eager's beyond the gradient check's tolerance. A note, not a failure: the profiling
    executor rewrites the double backward (NaN where eager gives 0 at |x| = 1e30 for some
    ``g``), and the original, a Python call for TorchScript, cannot be saved to compare with."""
    tensors = checker.small_inputs(getattr(torch, dtype_name))
    config = checker.config
    precision = "float32" if dtype_name == "float32" else "float64"
    generator = torch.Generator().manual_seed(4)
    results = []
    for module in (eager, compiled):
        inputs = checker.arguments(tensors, config, True)
        out = checker.call(module, inputs, "rewrite")
        if not out.requires_grad:
            return
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(5)).to(out.dtype)
        differentiable = [inputs[i] for i in checker.diff]
        first = torch.autograd.grad(
            out, differentiable, upstream, create_graph=True, allow_unused=True
        )
        results.append((inputs, first, differentiable))
    (e_in, e_first, e_x), (_, c_first, c_x) = results
    weights = _weights(e_first, c_first, generator)
    second_e = _projected_derivative(e_first, e_x, weights)
    second_c = _projected_derivative(c_first, c_x, weights)
    named = checker.named(e_in)
    for i, x, y in zip(checker.diff, second_e, second_c, strict=True):
        try:
            compare.compare_gradient(
                checker.params[i]["name"], x, y, precision, named, checker.notes
            )
        except compare.Mismatch as exc:
            checker.notes.add(f"TorchScript's second derivative differs from eager's: {exc}")


def _weights(first_a: Sequence[Any], first_b: Sequence[Any], generator: Any) -> list[Any]:
    """A random projection of each first derivative (of either side: one may be None)."""
    weights = []
    for x, y in zip(first_a, first_b, strict=True):
        shaped = x if x is not None else y
        weights.append(
            None
            if shaped is None
            else torch.randn(shaped.shape, generator=generator, dtype=torch.float64).to(
                shaped.dtype
            )
        )
    return weights


def _projected_derivative(
    first: Sequence[Any], inputs: Sequence[Any], weights: Sequence[Any]
) -> tuple[Any, ...]:
    """d/d inputs of ``sum_i (w_i * first_i).sum()``; None for each input where no first
    derivative depends on the inputs (a boxcar ``g``: no second derivative, as the original)."""
    terms = [
        (g * w).sum()
        for g, w in zip(first, weights, strict=True)
        if g is not None and w is not None and g.requires_grad
    ]
    if not terms:
        return tuple(None for _ in inputs)
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return tuple(torch.autograd.grad(total, list(inputs), allow_unused=True))


def _raised(step: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0][:200] if text else ""
    return f"the {step} raised {type(exc).__name__}: {first}"
