"""``--plot``: one PNG per verified surrogate, drawn in the verification child.

Loaded by ``child/checks`` (by path, never imported by the rewrite path); ``bind`` gives it the
child's torch and comparison helpers and imports matplotlib. The value and the gradients of the
original and of the rewrite on ``x`` in ``PLOT_RANGE`` ([0, 1] for a probability input; float64,
every hyperparameter combination checked) are drawn with matplotlib's Agg canvas (``Figure``;
pyplot's global state is never touched).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

PLOT_RANGE = (-3.0, 3.0)  # the dense part of the tested grid
UNIT_RANGE = (0.0, 1.0)  # for an input that is a probability (the "unit" domain)


def plot_range(checker: Any) -> tuple[float, float]:
    return UNIT_RANGE if getattr(checker, "domain", "real") == "unit" else PLOT_RANGE


PLOT_POINTS = 1201  # step 0.005: steps look like steps
PLOT_MARKERS = 31  # markers of the rewrite's curve, so that the original's line stays visible

# Bound by ``bind`` from the child: torch, its helpers and matplotlib's Figure.
torch: Any = None
Figure: Any = None
same_values: Callable[[Any, Any], bool]
first_line: Callable[[BaseException], str]
Isolation: type[Exception] = Exception
Mismatch: type[Exception] = Exception
SEED = 0


def bind(child: Mapping[str, Any]) -> None:
    """Take the child's torch and helpers, and import matplotlib (which may raise)."""
    global torch, Figure, same_values, first_line, Isolation, Mismatch, SEED
    figure = importlib.import_module("matplotlib.figure").Figure
    torch, Figure = child["torch"], figure
    same_values, first_line = child["same_values"], child["first_line"]
    Isolation, Mismatch, SEED = child["Isolation"], child["Mismatch"], child["SEED"]


def curves(checker: Any, candidate: Callable[..., Any], config: dict[str, Any]) -> Any:
    """x, per function (original, rewrite) the value and each input's gradient on x (the other
    differentiable inputs held at 0), in float64 with an upstream gradient of ones, and whether
    the forward is random (another seed gives another value)."""
    x = torch.linspace(*plot_range(checker), PLOT_POINTS, dtype=torch.float64)
    tensors = [x] + [torch.zeros_like(x)] * (len(checker.diff) - 1)
    found = []
    for fn, what in ((checker.original, "original"), (candidate, "rewrite")):
        args = checker.arguments(tensors, config, True)
        out = checker.call(fn, args, what)
        inputs = [args[i] for i in checker.diff]
        grads: Sequence[Any] = [None] * len(inputs)
        if out.requires_grad:
            grads = torch.autograd.grad(out, inputs, torch.ones_like(out), allow_unused=True)
        found.append(
            (
                out.detach().double(),
                [torch.zeros_like(x) if g is None else g.detach().double() for g in grads],
            )
        )
    torch.manual_seed(SEED + 1)
    with torch.no_grad():
        again = checker.original(*checker.arguments(tensors, config, False))
    return x, found, not same_values(found[0][0], again.double())


def plot_case(checker: Any, case: dict[str, Any], path: str, grad: dict[str, Any]) -> None:
    """One PNG: the forward value, then the gradient for each differentiable input; one color
    per hyperparameter combination, the original a wide solid line, the rewrite dashed with
    markers on top. A combination at which either side raises is left out (and said so)."""
    candidate = next(iter(checker.forms.values()))
    names = [checker.params[i]["name"] for i in checker.diff]
    panels = 1 + len(names)
    figure = Figure(figsize=(4.6 * panels, 4.2), layout="constrained")
    axes = figure.subplots(1, panels, squeeze=False)[0]
    configs = case["configs"]
    several = len(configs) > 1
    every = max(1, PLOT_POINTS // (PLOT_MARKERS - 1))
    identical, grad_diff, skipped, random = True, 0.0, [], False
    for k, config in enumerate(configs):
        try:
            x, ((va, ga), (vb, gb)), random = curves(checker, candidate, config)
        except Exception as exc:  # outside the hyperparameter's domain, say
            why = first_line(exc)
            if not isinstance(exc, (Isolation, Mismatch)):
                why = f"{type(exc).__name__}: {why}"
            skipped.append(f"{config['label'] or 'the call'}: {why[:80]}")
            continue
        color = f"C{k % 10}"
        for i, (ax, a, b) in enumerate(zip(axes, [va, *ga], [vb, *gb], strict=True)):
            style = _styles(color, dots=random and i == 0)  # random 0/1 draws: no lines
            ax.plot(x.tolist(), a.tolist(), **style[0], label=config["label"] if several else None)
            ax.plot(
                x.tolist(),
                b.tolist(),
                **style[1],
                markevery=(k * every // len(configs), every),  # markers side by side
            )
        identical = identical and same_values(va, vb)
        grad_diff = max([grad_diff, *(_largest(a, b) for a, b in zip(ga, gb, strict=True))])
    if len(skipped) == len(configs):
        raise RuntimeError("both functions raise on the plotted range: " + "; ".join(skipped))
    held = ", ".join(f"{n} = 0" for n in names[1:])
    for i, ax in enumerate(axes):
        ax.set_xlabel(names[0] + (f"   ({held})" if held else ""))
        ax.set_ylabel("forward value" if i == 0 else f"∂ out / ∂ {names[i - 1]}")
        value = "forward value" + (" (one random draw, same seed)" if random else "")
        ax.set_title(value if i == 0 else f"gradient for {names[i - 1]}", fontsize=11)
        ax.grid(True, alpha=0.3)
        ax.axhline(0.0, color="0.6", lw=0.6, zorder=0)
        ax.axvline(0.0, color="0.6", lw=0.6, zorder=0)
        ax.set_xlim(*plot_range(checker))
    shown = _styles("0.35" if several else "C0", dots=random)  # as in the value panel
    legend = _line([], [], **shown[0], label="original Function")
    rewrite = _line([], [], **shown[1], label="FGI rewrite")
    handles = [legend, rewrite] + (axes[0].get_legend_handles_labels()[0] if several else [])
    axes[0].legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)
    # Title: the class, then the hyperparameters and where they came from, then what the
    # variant was specialized to (call-site literals, factory arguments) unless already said.
    hyper = case.get("hyper") or (configs[0]["label"] if not several else "")
    special = case["id"].split("[", 1)[1].rstrip("]") if "[" in case["id"] else ""
    if special and not all(part in hyper for part in special.split(", ")):
        hyper = f"{hyper}  [{special}]" if hyper else f"[{special}]"
    title = case["class_name"] + (f"\n{hyper}" if hyper else "")
    figure.suptitle(title, fontsize=12, fontweight="bold")
    lines = [
        ("values identical" if identical else "values differ")
        + f", largest gradient difference {grad_diff:.3g}"
        + f"   (float64, {PLOT_POINTS} points, upstream gradient 1)"
    ]
    if skipped:
        lines.append("not drawn: " + "; ".join(skipped))
    if not grad["ok"]:
        detail = str(grad.get("detail", ""))
        lines.append(
            "grad check FAILED: " + (detail[:150] + "..." if len(detail) > 150 else detail)
        )
    color = "0.25" if grad["ok"] else "firebrick"
    figure.supxlabel("\n".join(lines), fontsize=9, color=color)  # the layout makes room
    figure.savefig(path, dpi=110)


def _styles(color: str, dots: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Line styles of the original (wide, translucent, solid) and of the rewrite (dashed,
    hollow markers) in one color; with ``dots`` points only (small dots for the original)."""
    original: dict[str, Any] = {
        "color": color,
        "ls": "-",
        "lw": 3.4,
        "alpha": 0.45,
        "solid_capstyle": "butt",
    }
    if dots:
        original.update(ls="none", marker=".", markersize=4)
    rewrite = {
        "color": color,
        "ls": "none" if dots else "--",
        "lw": 1.1,
        "marker": "o",
        "markersize": 4.5,
        "markerfacecolor": "white",
    }
    return original, rewrite


def _largest(a: Any, b: Any) -> float:
    both = torch.isfinite(a) & torch.isfinite(b)
    return float((a - b).abs()[both].max()) if bool(both.any()) else 0.0


def _line(*args: Any, **kwargs: Any) -> Any:
    return importlib.import_module("matplotlib.lines").Line2D(*args, **kwargs)
