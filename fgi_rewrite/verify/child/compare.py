"""Inputs and comparisons of the verification child (loaded by ``child/checks`` by path).

``grid`` and ``variants`` build the tested inputs (a real grid, or [0, 1] for probabilities;
broadcast shapes for second inputs); ``same_values``, ``value_difference`` and
``compare_gradient`` compare the original with the rewrite within ``TOLERANCE``. ``torch`` is
bound by the child after it imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

C = 8  # channels: the last dimension of every test input
# (rtol, atol) by the precision the comparison is made at: float32 when the input or the output
# is float32 (grad_output then is float32 and the original's own gradient is float32-accurate).
TOLERANCE = {"float32": (1e-5, 1e-6), "float64": (1e-10, 1e-12)}

torch: Any = None  # bound by checks.main()


class Isolation(Exception):
    """The original cannot be rebuilt or run in isolation: not a verdict on the rewrite."""


class Mismatch(Exception):
    """The rewrite differs from the original (or from eager): a failed check."""


# ---- inputs ----------------------------------------------------------------------------------


def grid(dtype: Any, hypers: Sequence[object], generator: Any, domain: str = "real") -> Any:
    """(B, C) values: a dense grid around 0, exact 0/±0.5/±1 and the numeric hyperparameter
    values (and their neighbours), wide normals and far tails where surrogate gradients
    underflow. In the ``unit`` domain (an input that is a probability) the same kinds of values
    inside [0, 1]: a dense grid, the ends and their neighbours, uniform draws."""
    if domain == "unit":
        return unit_grid(dtype, generator)
    dense = torch.linspace(-3.0, 3.0, 241, dtype=torch.float64)
    special = [
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.0,
        -1.0,
        1e-8,
        -1e-8,
        1e-30,
        -1e-30,
        40.0,
        -40.0,
        200.0,
        -200.0,
        1e4,
        -1e4,
        1e30,
        -1e30,
    ]
    for h in hypers:
        if isinstance(h, (int, float)) and not isinstance(h, bool) and math.isfinite(h):
            special += [float(h), -float(h)]
    exact = torch.tensor(special, dtype=torch.float64).to(dtype)
    neighbours = torch.cat(
        [
            torch.nextafter(exact, exact.new_tensor(math.inf)),
            torch.nextafter(exact, exact.new_tensor(-math.inf)),
        ]
    )
    wide = torch.cat(
        [
            torch.randn(256, generator=generator, dtype=torch.float64) * 4.0,
            torch.randn(64, generator=generator, dtype=torch.float64) * 20.0,
        ]
    )
    values = torch.cat([dense.to(dtype), exact, neighbours, wide.to(dtype)])
    pad = (-values.numel()) % C
    values = torch.cat([values, torch.zeros(pad, dtype=dtype)])
    return values.reshape(-1, C)


def unit_grid(dtype: Any, generator: Any) -> Any:
    dense = torch.linspace(0.0, 1.0, 241, dtype=torch.float64).to(dtype)
    exact = torch.tensor([0.0, 1.0, 0.5, 0.25, 0.75, 1e-8, 1e-30], dtype=torch.float64).to(dtype)
    neighbours = torch.cat(
        [
            torch.nextafter(exact, exact.new_tensor(math.inf)),
            torch.nextafter(exact, exact.new_tensor(-math.inf)),
        ]
    ).clamp(0.0, 1.0)
    uniform = torch.rand(320, generator=generator, dtype=torch.float64).to(dtype)
    values = torch.cat([dense, exact, neighbours, uniform])
    pad = (-values.numel()) % C
    values = torch.cat([values, torch.zeros(pad, dtype=dtype)])
    return values.reshape(-1, C)


def parameter(value: object, dtype: Any) -> Any:
    """A 0-dim ``nn.Parameter`` holding ``value`` (a hyperparameter the call sites pass as one),
    in the inputs' floating dtype (as after ``model.double()``)."""
    return torch.nn.Parameter(torch.tensor(float(value), dtype=dtype))  # type: ignore[arg-type]


# Labels of the input shapes every Function must accept; the broadcast ones may be refused.
SAME_SHAPE = ("", "same shape")


def variants(
    main: Any, extra: int, generator: Any, domain: str = "real"
) -> list[tuple[str, list[Any]]]:
    """The differentiable inputs: the main grid, and for each further input a per-channel
    ``(C,)`` tensor (with rows of the main input exactly at it), a full-shape tensor and a 0-dim
    tensor (all in [0, 1] in the ``unit`` domain)."""
    if extra == 0:
        return [("", [main])]
    dtype = main.dtype
    low, high = (0.0, 1.0) if domain == "unit" else (-0.5, 0.5)
    channel = torch.linspace(low, high, C, dtype=torch.float64).to(dtype)
    rows = torch.stack(
        [
            channel,
            torch.nextafter(channel, channel.new_tensor(math.inf)),
            torch.nextafter(channel, channel.new_tensor(-math.inf)),
        ]
    )
    if domain == "unit":
        rows = rows.clamp(0.0, 1.0)
    with_rows = torch.cat([main, rows])
    if domain == "unit":
        full = torch.rand(main.shape, generator=generator, dtype=torch.float64).to(dtype)
    else:
        full = (torch.randn(main.shape, generator=generator, dtype=torch.float64) * 0.5).to(dtype)
    scalar = torch.tensor(0.25, dtype=dtype)
    return [
        ("per-channel (C,)", [with_rows, *([channel] * extra)]),
        ("same shape", [main, *([full] * extra)]),
        ("0-dim", [main, *([scalar] * extra)]),
    ]


# ---- comparisons -----------------------------------------------------------------------------


def same_values(a: Any, b: Any) -> bool:
    return bool(
        a.dtype == b.dtype and a.shape == b.shape and ((a == b) | (a.isnan() & b.isnan())).all()
    )


def forgive_nan_at_nonfinite(original: Any, rewrite: Any, inputs: Sequence[Any]) -> Any:
    """``rewrite`` with the original's value put back where it is NaN and one of the
    differentiable inputs (broadcast to the value's shape) is ±inf or NaN: the emitted code's
    documented value there when a gradient can flow (README, "Semantics")."""
    if original.shape != rewrite.shape or not rewrite.is_floating_point():
        return rewrite
    poisoned = torch.zeros(rewrite.shape, dtype=torch.bool)
    for tensor in inputs:
        try:
            poisoned |= ~torch.isfinite(tensor.detach()).broadcast_to(rewrite.shape)
        except RuntimeError:  # not broadcastable: the value is not elementwise in this input
            return rewrite
    return torch.where(poisoned & rewrite.isnan(), original.to(rewrite.dtype), rewrite)


def where(inputs: Sequence[tuple[str, Any]], flat: int, shape: Any) -> str:
    """The input values at a flat position of a tensor of ``shape`` (broadcast)."""
    parts = []
    for name, tensor in inputs:
        if tensor.shape == shape:
            parts.append(f"{name}={tensor.reshape(-1)[flat].item()!r}")
        elif tensor.dim() == 1 and len(shape) >= 1 and tensor.shape[0] == shape[-1]:
            parts.append(f"{name}={tensor[flat % shape[-1]].item()!r}")
        elif tensor.dim() == 0:
            parts.append(f"{name}={tensor.item()!r}")
    summed = any(tensor.dim() > len(shape) for _, tensor in inputs)
    return ", ".join(parts) + (" (summed over the broadcast dimensions)" if summed else "")


def value_difference(a: Any, b: Any, inputs: Sequence[tuple[str, Any]]) -> str:
    if a.dtype != b.dtype or a.shape != b.shape:
        return (
            f"value dtype/shape differ: original {a.dtype} {tuple(a.shape)}, "
            f"rewrite {b.dtype} {tuple(b.shape)}"
        )
    bad = ~((a == b) | (a.isnan() & b.isnan()))
    count = int(bad.sum())
    flat = int(bad.reshape(-1).nonzero()[0])
    return (
        f"value differs at {count} input(s), e.g. at {where(inputs, flat, a.shape)}: "
        f"original {a.reshape(-1)[flat].item()!r}, rewrite {b.reshape(-1)[flat].item()!r}"
    )


def compare_gradient(
    name: str, ga: Any, gb: Any, precision: str, inputs: Sequence[tuple[str, Any]], notes: set[str]
) -> float:
    """Raise Mismatch unless ``gb`` equals ``ga`` within the tolerance; return the largest
    difference. Where the original's gradient is not finite, the rewrite gives 0 by design."""
    if ga is None or gb is None:
        if ga is None and gb is None:
            return 0.0
        which = "the original" if ga is None else "the rewrite"
        other = gb if ga is None else ga
        if not bool((other == 0).all()):
            raise Mismatch(f"gradient for {name}: {which} gives none")
        return 0.0
    if ga.dtype != gb.dtype or ga.shape != gb.shape:
        raise Mismatch(
            f"gradient for {name}: dtype/shape differ: original {ga.dtype} "
            f"{tuple(ga.shape)}, rewrite {gb.dtype} {tuple(gb.shape)}"
        )
    rtol, atol = TOLERANCE[precision]
    finite = torch.isfinite(ga)
    if not bool(finite.all()):
        nonfinite_ok = (gb == 0) | (ga == gb) | (ga.isnan() & gb.isnan())
        wrong = ~finite & ~nonfinite_ok
        if bool(wrong.any()):
            flat = int(wrong.reshape(-1).nonzero()[0])
            raise Mismatch(
                f"gradient for {name} at {where(inputs, flat, ga.shape)}: original "
                f"{ga.reshape(-1)[flat].item()!r}, "
                f"rewrite {gb.reshape(-1)[flat].item()!r}"
            )
        notes.add(
            f"original gradient not finite at {int((~finite).sum())} input(s), "
            "the rewrite's is 0 there"
        )
    diff = torch.where(finite, (ga - gb).abs(), torch.zeros_like(ga)).double()
    # Non-finite entries of the original were judged above: no tolerance applies to them.
    allowed = atol + rtol * torch.where(finite, ga, torch.zeros_like(ga)).abs().double()
    excess = diff - allowed
    excess = torch.where(torch.isnan(excess), torch.full_like(excess, math.inf), excess)
    largest = float(diff.max()) if diff.numel() else 0.0
    beyond = excess > 0
    if diff.numel() and bool(beyond.any()):
        worst = torch.where(beyond, diff, torch.full_like(diff, -1.0)).reshape(-1)
        worst = torch.where(torch.isnan(worst), torch.full_like(worst, math.inf), worst)
        flat = int(worst.argmax())
        raise Mismatch(
            f"gradient for {name} differs beyond rtol {rtol:g}, atol {atol:g} at "
            f"{int(beyond.sum())} of {beyond.numel()} input(s): largest difference "
            f"{diff.reshape(-1)[flat].item():.3g} at {where(inputs, flat, ga.shape)}: original "
            f"{ga.reshape(-1)[flat].item()!r}, rewrite {gb.reshape(-1)[flat].item()!r}"
        )
    return largest


def compare_grad_presence(
    original: Sequence[Any],
    rewrite: Sequence[Any],
    names: Sequence[str],
    inputs: Sequence[tuple[str, Any]],
    notes: set[str],
) -> None:
    """The arguments of the original's and of the rewrite's call, after ``backward`` on each:
    every one that requires grad has a ``.grad`` after the rewrite exactly where it has one after
    the original (a backward returning None for an ``nn.Parameter`` leaves it None; a zero
    tensor there would let weight decay and momentum move it), equal within the tolerance."""
    for name, a, b in zip(names, original, rewrite, strict=True):
        if not (isinstance(a, torch.Tensor) and a.requires_grad):
            continue
        if (a.grad is None) != (b.grad is None):
            if a.grad is None:
                what = "a zero tensor" if not bool(b.grad.any()) else "a tensor"
                raise Mismatch(
                    f"{name}.grad after backward: the original leaves it None, the rewrite sets "
                    f"it ({what})"
                )
            raise Mismatch(
                f"{name}.grad after backward: the original sets it, the rewrite leaves it None"
            )
        if a.grad is not None:
            compare_gradient(f"{name}.grad", a.grad, b.grad, "float32", inputs, notes)
