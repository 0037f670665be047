"""The verification child: the only code of fgi-rewrite that imports torch.

``fgi_rewrite.verify`` runs this file as a script in a subprocess (``python verify_child.py``),
with a job as JSON on stdin, and reads one result line per check from stdout. Nothing in the
rewrite path imports this module; even importing it does not import torch (that happens in
``main``). Each case is an isolated verification module written to a temporary directory: the
original Function class with the imports, helpers and constants of its module, the emitted FGI
code (function form and/or inline form inside an ``nn.Module``) and a wrapper that calls the
original through ``apply``. Checks:

* grad: forward values bit-identical (dtype, shape, NaN-aware equality) and gradients within
  ``TOLERANCE`` on a dense grid around 0 and the hyperparameter values, wide normals and far
  tails, float32 and float64, broadcast second inputs, a random upstream gradient; the same
  values under ``torch.no_grad()``, with ``requires_grad=False`` and for ±inf/NaN inputs.
* script: ``torch.jit.script`` + ``torch.jit.save`` + ``torch.jit.load`` of each emitted form,
  no ``prim::PythonOp`` in the graph, loaded outputs and gradients equal to eager. The original's
  own ``torch.jit.script``/``save`` result is recorded.
* compile / export (level ``full``): ``torch.compile(fullgraph=True)`` forward and backward equal
  to eager, and ``torch.export`` keeps the gradient (the original's custom backward is dropped).

With ``--plot`` a case carries ``plot`` (an absolute PNG path): after the grad check, the value
and the gradients of the original and of the rewrite on ``x`` in ``PLOT_RANGE`` (float64, every
hyperparameter combination checked) are drawn with matplotlib's Agg canvas (``Figure``; pyplot's
global state is never touched). matplotlib is imported once; if it is missing the child says so
once (a ``plot`` message) and verifies without plotting.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import os
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable, Sequence
from typing import Any

MARKER = "@@fgi-verify@@ "
C = 8  # channels: the last dimension of every test input
SEED = 1234
# (rtol, atol) by the precision the comparison is made at: float32 when the input or the output
# is float32 (grad_output then is float32 and the original's own gradient is float32-accurate).
TOLERANCE = {"float32": (1e-5, 1e-6), "float64": (1e-10, 1e-12)}
PLOT_RANGE = (-3.0, 3.0)  # the dense part of the tested grid
PLOT_POINTS = 1201  # step 0.005: steps look like steps
PLOT_MARKERS = 31  # markers of the rewrite's curve, so that the original's line stays visible

torch: Any = None  # bound in main()
Figure: Any = None  # matplotlib.figure.Figure, bound in main() when a case is plotted


class Isolation(Exception):
    """The original cannot be rebuilt or run in isolation: not a verdict on the rewrite."""


class Mismatch(Exception):
    """The rewrite differs from the original (or from eager): a failed check."""


# ---- building a case's module ----------------------------------------------------------------


def build_module(case: dict[str, Any], workdir: str, index: int) -> types.ModuleType:
    """Write the case's chunks to one file (so that TorchScript can read their source) and execute
    them one at a time: a helper or constant that fails does not matter unless it is used."""
    name = f"_fgi_verify_case_{index}"
    path = os.path.join(workdir, f"{name}.py")
    texts = [chunk["text"].rstrip("\n") + "\n" for chunk in case["chunks"]]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(texts))
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    flags = 0
    if case.get("future_annotations"):
        flags |= importlib.import_module("__future__").annotations.compiler_flag
    line = 0
    for chunk, text in zip(case["chunks"], texts, strict=True):
        source = "\n" * line + text
        line += text.count("\n") + 1
        try:
            code = compile(source, path, "exec", flags=flags, dont_inherit=True)
            exec(code, module.__dict__)  # noqa: S102 - the isolated verification module
        except Exception as exc:
            if chunk["kind"] in ("class", "base"):
                raise Isolation(
                    f"{chunk['what']} cannot be rebuilt in isolation: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            if chunk["kind"] == "fgi":
                raise Mismatch(
                    f"the emitted code does not run: {type(exc).__name__}: {exc}"
                ) from None
    return module


# ---- inputs ----------------------------------------------------------------------------------


def grid(dtype: Any, hypers: Sequence[object], generator: Any) -> Any:
    """(B, C) values: a dense grid around 0, exact 0/±0.5/±1 and the numeric hyperparameter
    values (and their neighbours), wide normals and far tails where surrogate gradients
    underflow."""
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


def variants(main: Any, extra: int, generator: Any) -> list[tuple[str, list[Any]]]:
    """The differentiable inputs: the main grid, and for each further input a per-channel
    ``(C,)`` tensor (with rows of the main input exactly at it), a full-shape tensor and a 0-dim
    tensor."""
    if extra == 0:
        return [("", [main])]
    dtype = main.dtype
    channel = torch.linspace(-0.5, 0.5, C, dtype=torch.float64).to(dtype)
    rows = torch.stack(
        [
            channel,
            torch.nextafter(channel, channel.new_tensor(math.inf)),
            torch.nextafter(channel, channel.new_tensor(-math.inf)),
        ]
    )
    with_rows = torch.cat([main, rows])
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
    excess = diff - (atol + rtol * ga.abs().double())
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


# ---- the checks --------------------------------------------------------------------------------


class Checker:
    def __init__(self, case: dict[str, Any], module: types.ModuleType) -> None:
        self.case = case
        self.module = module
        self.params: list[dict[str, Any]] = case["params"]
        self.diff = [i for i, p in enumerate(self.params) if p["grad"]]
        self.original: Callable[..., Any] = getattr(module, case["class_name"]).apply
        self.forms: dict[str, Callable[..., Any]] = {}
        for form, name in case["forms"].items():
            target = getattr(module, name)
            self.forms[form] = target() if isinstance(target, type) else target
        self.notes: set[str] = set()
        self.largest = 0.0

    def arguments(self, tensors: Sequence[Any], config: dict[str, Any], grad: bool) -> list[Any]:
        args: list[Any] = []
        it = iter(tensors)
        for p in self.params:
            if p["grad"]:
                args.append(next(it).detach().clone().requires_grad_(grad))
            else:
                args.append(config["values"][p["name"]])
        return args

    def call(self, fn: Callable[..., Any], args: Sequence[Any], what: str) -> Any:
        torch.manual_seed(SEED)  # stochastic forwards draw the same numbers
        try:
            out = fn(*args)
        except Exception as exc:
            if what == "original":
                raise Isolation(f"the original raised {type(exc).__name__}: {exc}") from None
            raise Mismatch(f"the rewrite raised {type(exc).__name__}: {exc}") from None
        if not isinstance(out, torch.Tensor):
            raise Isolation(f"the {what} returned {type(out).__name__}, not a tensor")
        return out

    def named(self, args: Sequence[Any]) -> list[tuple[str, Any]]:
        return [(self.params[i]["name"], args[i]) for i in self.diff]

    def grad_check(self) -> str:
        generator = torch.Generator().manual_seed(0)
        checked = 0
        for config in self.case["configs"]:
            hypers = list(config["values"].values())
            for dtype_name in ("float32", "float64"):
                dtype = getattr(torch, dtype_name)
                main = grid(dtype, hypers, generator)
                for label, tensors in variants(main, len(self.diff) - 1, generator):
                    where_ = ", ".join(x for x in (dtype_name, label, config["label"]) if x)
                    for form, candidate in self.forms.items():
                        try:
                            checked += self.one(candidate, tensors, config, dtype_name, generator)
                        except Mismatch as exc:
                            suffix = f" [{form} form]" if len(self.forms) > 1 else ""
                            raise Mismatch(f"{exc} ({where_}){suffix}") from None
        return f"{checked} inputs"

    def one(
        self,
        candidate: Callable[..., Any],
        tensors: Sequence[Any],
        config: dict[str, Any],
        dtype_name: str,
        generator: Any,
    ) -> int:
        a_in = self.arguments(tensors, config, True)
        b_in = self.arguments(tensors, config, True)
        a = self.call(self.original, a_in, "original")
        b = self.call(candidate, b_in, "rewrite")
        named = self.named(a_in)
        if not same_values(a, b):
            raise Mismatch(value_difference(a, b, named))
        precision = "float32" if "float32" in (dtype_name, str(a.dtype)[6:]) else "float64"
        if a.requires_grad:
            if not b.requires_grad:
                raise Mismatch("the rewrite's output does not require grad")
            upstream = torch.randn(a.shape, generator=generator, dtype=torch.float64).to(a.dtype)
            inputs_a = [a_in[i] for i in self.diff]
            inputs_b = [b_in[i] for i in self.diff]
            try:
                ga = torch.autograd.grad(a, inputs_a, upstream, allow_unused=True)
            except Exception as exc:
                raise Isolation(
                    f"the original's backward raised {type(exc).__name__}: " f"{first_line(exc)}"
                ) from None
            try:
                gb = torch.autograd.grad(b, inputs_b, upstream, allow_unused=True)
            except Exception as exc:
                raise Mismatch(
                    f"the rewrite's backward raised {type(exc).__name__}: " f"{first_line(exc)}"
                ) from None
            for i, x, y in zip(self.diff, ga, gb, strict=True):
                self.largest = max(
                    self.largest,
                    compare_gradient(self.params[i]["name"], x, y, precision, named, self.notes),
                )
        # Inference paths give the same value: under no_grad, and without requires_grad.
        with torch.no_grad():
            a0 = self.call(self.original, a_in, "original")
            b0 = self.call(candidate, b_in, "rewrite")
        if not same_values(a0, b0):
            raise Mismatch("under torch.no_grad(): " + value_difference(a0, b0, named))
        plain = self.arguments(tensors, config, False)
        a1 = self.call(self.original, plain, "original")
        b1 = self.call(candidate, plain, "rewrite")
        if not same_values(a1, b1):
            raise Mismatch("with requires_grad=False: " + value_difference(a1, b1, named))
        # Non-finite inputs: values only, every difference reported.
        bad = [t.clone() for t in tensors]
        flat = bad[0].reshape(-1)
        flat[:3] = torch.tensor([math.inf, -math.inf, math.nan], dtype=flat.dtype)
        a_bad = self.call(self.original, self.arguments(bad, config, True), "original")
        b_bad = self.call(candidate, self.arguments(bad, config, True), "rewrite")
        if not same_values(a_bad, b_bad):
            raise Mismatch(
                "for non-finite inputs: "
                + value_difference(a_bad, b_bad, self.named(self.arguments(bad, config, True)))
            )
        return int(tensors[0].numel())

    # -- TorchScript ----------------------------------------------------------------------------
    def small_inputs(self, dtype: Any) -> list[Any]:
        generator = torch.Generator().manual_seed(1)
        config = self.case["configs"][0]
        main = grid(dtype, list(config["values"].values()), generator)[::3]
        _, tensors = variants(main, len(self.diff) - 1, generator)[0]
        return list(tensors)

    def against_eager(
        self,
        compiled: Callable[..., Any],
        eager: Callable[..., Any],
        dtype_name: str,
        exact: bool,
        runs: int = 2,
        inference: bool = True,
    ) -> None:
        config = self.case["configs"][0]
        tensors = self.small_inputs(getattr(torch, dtype_name))
        generator = torch.Generator().manual_seed(2)
        e_in = self.arguments(tensors, config, True)
        e = self.call(eager, e_in, "rewrite")
        upstream = torch.randn(e.shape, generator=generator, dtype=torch.float64).to(e.dtype)
        diff_e = [e_in[i] for i in self.diff]
        ge = None
        if e.requires_grad:
            ge = torch.autograd.grad(e, diff_e, upstream, allow_unused=True)
        for _ in range(runs):  # the profiling executor optimises the graph on later runs
            c_in = self.arguments(tensors, config, True)
            c = self.call(compiled, c_in, "rewrite")
            named = self.named(c_in)
            if not same_values(e, c):
                if exact:
                    raise Mismatch(value_difference(e, c, named) + f" ({dtype_name})")
                compare_gradient("the value", e, c, "float32", named, self.notes)
                self.notes.add("compiled values equal eager within tolerance, not bitwise")
            if ge is None:
                continue
            if not c.requires_grad:
                raise Mismatch(f"no gradient ({dtype_name})")
            gc = torch.autograd.grad(c, [c_in[i] for i in self.diff], upstream, allow_unused=True)
            precision = "float32" if "float32" in (dtype_name, str(e.dtype)[6:]) else "float64"
            for i, x, y in zip(self.diff, ge, gc, strict=True):
                compare_gradient(self.params[i]["name"], x, y, precision, named, self.notes)
        if not inference:
            return
        with torch.no_grad():
            c0 = self.call(compiled, self.arguments(tensors, config, False), "rewrite")
        if exact and not same_values(e, c0):
            raise Mismatch("under torch.no_grad(): " + value_difference(e, c0, self.named(e_in)))

    def script_check(self) -> str:
        for form, eager in self.forms.items():
            module = eager if isinstance(eager, torch.nn.Module) else self.wrapper(form)
            step = "torch.jit.script"
            try:
                scripted = torch.jit.script(module)
                if "prim::PythonOp" in str(scripted.inlined_graph):
                    raise Mismatch(
                        f"{form} form: the scripted graph calls Python "
                        "(prim::PythonOp), which torch.jit.save cannot export"
                    )
                step = "torch.jit.save"
                buffer = io.BytesIO()
                torch.jit.save(scripted, buffer)
                buffer.seek(0)
                step = "torch.jit.load"
                loaded = torch.jit.load(buffer)
            except Mismatch:
                raise
            except Exception as exc:
                raise Mismatch(
                    f"{form} form: {step} fails: {type(exc).__name__}: " f"{first_line(exc)}"
                ) from None
            if "prim::PythonOp" in str(loaded.inlined_graph):
                raise Mismatch(f"{form} form: the loaded graph calls Python (prim::PythonOp)")
            for dtype_name in ("float32", "float64"):
                try:
                    self.against_eager(loaded, module, dtype_name, exact=True)
                except Mismatch as exc:
                    raise Mismatch(f"{form} form, saved and loaded: {exc}") from None
        return ""

    def wrapper(self, form: str) -> Any:
        return getattr(self.module, self.case["wrappers"][form])()

    def original_script(self) -> str:
        module = getattr(self.module, self.case["original_wrapper"])()
        try:
            scripted = torch.jit.script(module)
        except Exception as exc:
            return f"torch.jit.script fails ({type(exc).__name__})"
        try:
            torch.jit.save(scripted, io.BytesIO())
        except Exception:
            return "torch.jit.save fails"
        return "saves"

    # -- torch.compile and torch.export ------------------------------------------------------
    def compile_check(self) -> str:
        inductor: Any = importlib.import_module("torch._inductor.config")
        inductor.fallback_random = True  # the same random numbers as eager
        form = "inline" if "inline" in self.forms else "function"
        eager = self.wrapper(form)
        torch._dynamo.reset()
        compiled = torch.compile(eager, fullgraph=True, dynamic=False)
        try:
            # The training graph only: a no_grad call would compile the trivial f(x) again.
            self.against_eager(compiled, eager, "float32", exact=False, runs=1, inference=False)
        except Mismatch:
            raise
        except Exception as exc:
            raise Mismatch(f"{type(exc).__name__}: {first_line(exc)}") from None
        return ""

    def export_check(self) -> tuple[str, str]:
        form = "inline" if "inline" in self.forms else "function"
        eager = self.wrapper(form)
        config = self.case["configs"][0]
        tensors = self.small_inputs(torch.float32)
        try:
            program = torch.export.export(eager, tuple(self.arguments(tensors, config, True)))
            exported = program.module()
        except Exception as exc:
            raise Mismatch(f"{type(exc).__name__}: {first_line(exc)}") from None
        self.against_eager(exported, eager, "float32", exact=True, runs=1)
        return "", self.original_export(tensors, config)

    def original_export(self, tensors: Sequence[Any], config: dict[str, Any]) -> str:
        module = getattr(self.module, self.case["original_wrapper"])()
        try:
            program = torch.export.export(module, tuple(self.arguments(tensors, config, True)))
            exported = program.module()
        except Exception as exc:
            return f"torch.export fails ({type(exc).__name__})"
        a_in = self.arguments(tensors, config, True)
        b_in = self.arguments(tensors, config, True)
        a = self.call(self.original, a_in, "original")
        b = self.call(exported, b_in, "original")
        if not b.requires_grad:
            return "torch.export drops the custom backward (no gradient)"
        upstream = torch.ones_like(a)
        ga = torch.autograd.grad(a, [a_in[i] for i in self.diff], upstream, allow_unused=True)
        gb = torch.autograd.grad(b, [b_in[i] for i in self.diff], upstream, allow_unused=True)
        for x, y in zip(ga, gb, strict=True):
            if (x is None) != (y is None) or (x is not None and not torch.allclose(x, y)):
                return "torch.export drops the custom backward (gradient differs)"
        return "exports with its gradient"


# ---- plots (--plot) ------------------------------------------------------------------------------


def curves(checker: Checker, candidate: Callable[..., Any], config: dict[str, Any]) -> Any:
    """x, per function (original, rewrite) the value and each input's gradient on x (the other
    differentiable inputs held at 0), in float64 with an upstream gradient of ones, and whether
    the forward is random (another seed gives another value)."""
    x = torch.linspace(*PLOT_RANGE, PLOT_POINTS, dtype=torch.float64)
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


def plot_case(checker: Checker, case: dict[str, Any], path: str, grad: dict[str, Any]) -> None:
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
        ax.set_xlim(*PLOT_RANGE)
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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300].rstrip(":") if text else ""


def run_case(case: dict[str, Any], level: str, workdir: str, index: int) -> dict[str, Any]:
    result: dict[str, Any] = {"id": case["id"], "checks": {}, "original": {}, "notes": []}
    checks: dict[str, Any] = result["checks"]
    try:
        module = build_module(case, workdir, index)
        checker = Checker(case, module)
    except Isolation as exc:
        result["isolation"] = str(exc)
        return result
    except Mismatch as exc:
        checks["grad"] = {"ok": False, "detail": str(exc)}
        return result
    steps: list[tuple[str, Callable[[], object]]] = [("grad", checker.grad_check)]
    if level in ("script", "full"):
        steps.append(("script", checker.script_check))
    if level == "full":
        steps += [("compile", checker.compile_check), ("export", checker.export_check)]
    for name, step in steps:
        start = time.perf_counter()
        try:
            outcome = step()
            detail, original = outcome if isinstance(outcome, tuple) else (outcome, None)
            checks[name] = {"ok": True, "detail": detail}
            if original:
                result["original"][name] = original
        except Isolation as exc:
            result["isolation"] = str(exc)
            break
        except Mismatch as exc:
            checks[name] = {"ok": False, "detail": str(exc)}
        except Exception as exc:  # a check that crashed is a failed check, with its reason
            checks[name] = {"ok": False, "detail": f"{type(exc).__name__}: {first_line(exc)}"}
        checks.get(name, {})["seconds"] = round(time.perf_counter() - start, 4)
        if name == "grad" and case.get("plot") and Figure is not None:
            try:
                plot_case(checker, case, case["plot"], checks[name])
                result["plot"] = case["plot"]
            except Exception as exc:  # a plot is never a verdict on the rewrite
                result["plot_error"] = f"{type(exc).__name__}: {first_line(exc)}"
        if name == "grad" and not checks[name]["ok"]:
            break  # a wrong gradient is never written: the other checks do not matter
        if name == "script":
            result["original"]["script"] = checker.original_script()
    result["notes"] = sorted(checker.notes)
    result["largest_difference"] = checker.largest
    return result


def main() -> int:
    global torch, Figure
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever the user's code prints goes to stderr, not to our channel

    def send(message: dict[str, Any]) -> None:
        channel.write(MARKER + json.dumps(message) + "\n")
        channel.flush()

    job = json.load(sys.stdin)
    start = time.perf_counter()
    try:
        if os.environ.get("FGI_REWRITE_VERIFY_NO_TORCH"):
            raise ImportError("FGI_REWRITE_VERIFY_NO_TORCH is set")
        torch = importlib.import_module("torch")
    except Exception as exc:
        send({"kind": "torch", "ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return 0
    send(
        {
            "kind": "torch",
            "ok": True,
            "version": str(torch.__version__),
            "seconds": round(time.perf_counter() - start, 3),
        }
    )
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    if any(case.get("plot") for case in job["cases"]):
        try:
            Figure = importlib.import_module("matplotlib.figure").Figure
            send({"kind": "plot", "ok": True})
        except Exception as exc:
            send({"kind": "plot", "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    with tempfile.TemporaryDirectory(prefix="fgi-verify-") as workdir:
        for index, case in enumerate(job["cases"]):
            start = time.perf_counter()
            try:
                result = run_case(case, job["level"], workdir, index)
            except Exception:
                result = {"id": case["id"], "crash": traceback.format_exc(limit=4)}
            result["kind"] = "case"
            result["seconds"] = round(time.perf_counter() - start, 4)
            send(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
