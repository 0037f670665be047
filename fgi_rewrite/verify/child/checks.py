"""The verification child: the only code of fgi-rewrite that imports torch.

``fgi_rewrite.verify.stage`` runs this file as a script in a subprocess (``python checks.py``),
with a job as JSON on stdin, and reads one result line per check from stdout. Nothing in the
rewrite path imports this module; even importing it does not import torch (that happens in
``main``). Each case is an isolated verification module written to a temporary directory: the
original Function class with the imports, helpers and constants of its module, the emitted FGI
code (function form and/or inline form inside an ``nn.Module``) and a wrapper that calls the
original through ``apply``. Checks:

* grad: forward values bit-identical (dtype, shape, NaN-aware equality) and gradients within
  ``compare.TOLERANCE`` on a dense grid around 0 and the hyperparameter values, wide
  normals and far tails (in [0, 1] for a probability input), float32 and float64, broadcast
  second inputs (those the original itself accepts), a random upstream gradient; the same
  values under ``torch.no_grad()``, with ``requires_grad=False`` and for ±inf/NaN inputs.
  Sample hyperparameter values at which the original raises are left out (``skipped``).
* script: ``torch.jit.script`` + ``torch.jit.save`` + ``torch.jit.load`` of each emitted form,
  no ``prim::PythonOp`` in the graph, loaded outputs and gradients equal to eager. The original's
  own ``torch.jit.script``/``save`` result is recorded.
* compile / export (level ``full``): ``torch.compile(fullgraph=True)`` forward and backward equal
  to eager, and ``torch.export`` keeps the gradient (the original's custom backward is dropped).

With ``--plot`` a case carries ``plot`` (an absolute PNG path): after the grad check, the value
and the gradients of the original and of the rewrite are drawn by ``plot.py`` (loaded
beside this file). matplotlib is imported once; if it is missing the child says so once (a
``plot`` message) and verifies without plotting.
"""

from __future__ import annotations

import importlib
import importlib.util
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
SEED = 1234
SCRIPT_TOLERANCE = "float32"  # saved-and-loaded TorchScript against eager (script_check)

torch: Any = None  # bound in main()
plotter: Any = None  # the plot module, loaded in main() when a case is plotted


def sibling(name: str) -> types.ModuleType:
    """A module beside this file, loaded by path under a private name: the child runs in the
    verifying interpreter, which need not have fgi_rewrite installed, and must not put this
    directory on ``sys.path`` (its names could shadow the user's modules)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_fgi_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Inputs and comparisons (compare.py, beside this file).
compare: Any = sibling("compare")
Isolation, Mismatch = compare.Isolation, compare.Mismatch
grid, variants, SAME_SHAPE = compare.grid, compare.variants, compare.SAME_SHAPE
same_values, value_difference = compare.same_values, compare.value_difference
forgive_nan_at_nonfinite = compare.forgive_nan_at_nonfinite
compare_gradient = compare.compare_gradient
compare_grad_presence, parameter = compare.compare_grad_presence, compare.parameter
# Second derivatives of the exact form (second_order.py, beside this file).
second_order: Any = sibling("second_order")
second_order.compare = compare
# Run-time state the rewrite reads, set for each configuration (state.py, beside this file).
state: Any = sibling("state")


# ---- building a case's module ----------------------------------------------------------------


def build_module(
    case: dict[str, Any], workdir: str, index: int, namespace: dict[str, Any] | None = None
) -> types.ModuleType:
    """Write the case's chunks to one file (so that TorchScript can read their source) and execute
    them one at a time: a helper or constant that fails does not matter unless it is used.
    ``namespace`` (names of an imported user module) is bound first."""
    name = f"_fgi_verify_case_{index}" + ("_imported" if namespace is not None else "")
    path = os.path.join(workdir, f"{name}.py")
    texts = [chunk["text"].rstrip("\n") + "\n" for chunk in case["chunks"]]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(texts))
    module = types.ModuleType(name)
    module.__dict__.update(namespace or {})
    module.__file__ = path
    sys.modules[name] = module
    annotations = importlib.import_module("__future__").annotations.compiler_flag
    # Definitions copied from the project modules the Function's module imports from, each in
    # a namespace of its own (``verify._foreign``), so that their names cannot collide.
    namespaces: dict[str, types.ModuleType] = {"": module}
    module.__dict__["__fgi_namespaces__"] = namespaces  # where run-time state is set
    line = 0
    for chunk, text in zip(case["chunks"], texts, strict=True):
        source = "\n" * line + text
        line += text.count("\n") + 1
        name_ = chunk.get("namespace", "")
        if name_ not in namespaces:
            namespaces[name_] = types.ModuleType(f"{name}.{name_}")
            namespaces[name_].__file__ = path
        target = namespaces[name_]
        if chunk["kind"] == "link":
            link(namespaces, chunk)
            continue
        future = chunk.get("future", case.get("future_annotations") if not name_ else False)
        try:
            code = compile(
                source, path, "exec", flags=annotations if future else 0, dont_inherit=True
            )
            exec(code, target.__dict__)  # noqa: S102 - the isolated verification module
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


def link(namespaces: dict[str, types.ModuleType], chunk: dict[str, Any]) -> None:
    """Bind imported names to what a copied namespace defines; a name it lacks stays unbound
    (it matters only if the Function uses it, and then the original raises NameError)."""
    source = namespaces.get(chunk["source"])
    if source is None:
        return
    for local, attribute in chunk["names"].items():
        value = getattr(source, attribute, None) if attribute else source
        if value is not None:
            setattr(namespaces[chunk.get("namespace", "")], local, value)


# ---- the checks --------------------------------------------------------------------------------


class Checker:
    def __init__(self, case: dict[str, Any], module: types.ModuleType) -> None:
        self.case = case
        self.module = module
        self.params: list[dict[str, Any]] = case["params"]
        self.diff = [i for i, p in enumerate(self.params) if p["grad"]]
        self.original: Callable[..., Any] = getattr(module, case["class_name"]).apply
        if case.get("callables"):  # a lambda or function the call sites pass, then inlined
            self.original = state.with_callables(self.original, module, case["callables"])
        self.forms: dict[str, Callable[..., Any]] = {}
        for form, name in case["forms"].items():
            target = getattr(module, name)
            self.forms[form] = target() if isinstance(target, type) else target
        self.notes: set[str] = set()
        self.largest = 0.0
        self.domain: str = case.get("domain", "real")
        self.refused_shapes: set[str] = set()  # broadcast variants the original cannot run
        self.skipped: list[str] = []  # sample hyperparameter values outside the domain
        self.usable: list[dict[str, Any]] = []  # the configurations compared (grad_check)

    def arguments(self, tensors: Sequence[Any], config: dict[str, Any], grad: bool) -> list[Any]:
        self.set_state(config)
        args: list[Any] = []
        it = iter(tensors)
        for p in self.params:
            if p["grad"]:
                args.append(next(it).detach().clone().requires_grad_(grad))
            elif p["name"] in config.get("parameters", ()):
                args.append(parameter(config["values"][p["name"]], tensors[0].dtype))
            elif p["name"] in config.get("tensors", ()):
                args.append(torch.tensor(config["values"][p["name"]]))
            else:
                args.append(config["values"][p["name"]])
        return args

    def set_state(self, config: dict[str, Any]) -> None:
        """The run-time state both sides read, at this configuration's values."""
        if not self.case.get("reads"):
            return
        targets = [self.module.__dict__.get("__fgi_namespaces__", {"": self.module})]
        user = self.module.__dict__.get("__fgi_user__")
        if user is not None:
            targets.append({"": user})
        state.set_state(self.case, config, targets)

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
        configs = self.usable_configs()
        for config in configs:
            hypers = list(config["values"].values())
            for dtype_name in ("float32", "float64"):
                dtype = getattr(torch, dtype_name)
                main = grid(dtype, hypers, generator, self.domain)
                for label, tensors in variants(main, len(self.diff) - 1, generator, self.domain):
                    if label in self.refused_shapes:
                        continue
                    if label not in SAME_SHAPE:
                        why = self.original_fails(tensors, config)
                        if why:  # the original cannot run on these shapes: no evidence there
                            self.refused_shapes.add(label)
                            self.notes.add(f"{label} inputs not compared: the original {why}")
                            continue
                    where_ = ", ".join(x for x in (dtype_name, label, config["label"]) if x)
                    for form, candidate in self.forms.items():
                        try:
                            checked += self.one(candidate, tensors, config, dtype_name, generator)
                        except Mismatch as exc:
                            suffix = f" [{form} form]" if len(self.forms) > 1 else ""
                            raise Mismatch(f"{exc} ({where_}){suffix}") from None
            self.grad_presence_check(config, generator)
        return f"{checked} inputs"

    def grad_presence_check(self, config: dict[str, Any], generator: Any) -> None:
        """``.grad is None`` parity for every form at one configuration (float32, same-shape
        inputs): with the differentiable inputs requiring grad, and (unless the way the
        hyperparameters are passed is a guess, ``sampled``) without."""
        main = grid(torch.float32, list(config["values"].values()), generator, self.domain)
        shapes = variants(main, len(self.diff) - 1, generator, self.domain)
        tensors = next(t for label, t in shapes if label in SAME_SHAPE)
        for grad in (True, False) if not config.get("sampled") else (True,):
            for form, candidate in self.forms.items():
                try:
                    self.grad_presence(candidate, tensors, config, grad, generator)
                except Mismatch as exc:
                    suffix = f" [{form} form]" if len(self.forms) > 1 else ""
                    inputs = "" if grad else ", inputs not requiring grad"
                    raise Mismatch(f"{exc} (float32{inputs}, {config['label']}){suffix}") from None

    def grad_presence(
        self,
        candidate: Callable[..., Any],
        tensors: Sequence[Any],
        config: dict[str, Any],
        grad: bool,
        generator: Any,
    ) -> None:
        """``backward`` on each side, then ``compare_grad_presence``; an output that does not
        require grad counts as a backward that reaches nothing."""
        sides = []
        upstream = None
        for fn, what in ((self.original, "original"), (candidate, "rewrite")):
            args = self.arguments(tensors, config, grad)
            out = self.call(fn, args, what)
            if upstream is None:  # the same upstream gradient on both sides
                upstream = torch.randn(out.shape, generator=generator, dtype=torch.float64)
            if out.requires_grad:
                try:
                    out.backward(upstream.to(out.dtype))
                except Exception as exc:
                    kind = Isolation if what == "original" else Mismatch
                    raise kind(
                        f"the {what}'s backward raised {type(exc).__name__}: {first_line(exc)}"
                    ) from None
            sides.append(args)
        names = [p["name"] for p in self.params]
        compare_grad_presence(sides[0], sides[1], names, self.named(sides[0]), self.notes)

    def usable_configs(self) -> list[dict[str, Any]]:
        """The hyperparameter combinations to compare at. A combination made of sample values
        (nothing at the call sites or in a default says what the value is) at which the original
        itself raises, also when passed as a number rather than a tensor, lies outside the
        hyperparameter's domain: it is left out, and said so in ``skipped``; values from call
        sites and defaults are never left out."""
        usable = []
        generator = torch.Generator().manual_seed(3)
        for config in self.case["configs"]:
            if config.get("sampled"):
                main = grid(torch.float64, list(config["values"].values()), generator, self.domain)
                shapes = variants(main, len(self.diff) - 1, generator, self.domain)
                tensors = next(t for label, t in shapes if label in SAME_SHAPE)
                why = self.original_fails(tensors, config)
                if not why and (config.get("tensors") or config.get("parameters")):
                    # A value outside the domain as a number (``2 / (alpha - 1)`` at 1.0) is
                    # outside it as a tensor too, where it gives inf instead of raising.
                    plain = {**config, "tensors": [], "parameters": []}
                    why = self.original_fails(tensors, plain)
                    why = f"{why} (passed as a number)" if why else ""
                if why:
                    self.skipped.append(f"{config['label']}: the original {why}")
                    continue
            usable.append(config)
        self.usable = usable
        if not usable:
            raise Isolation(
                "the original raises at every sample hyperparameter value ("
                + "; ".join(self.skipped)
                + ")"
            )
        return usable

    def original_fails(self, tensors: Sequence[Any], config: dict[str, Any]) -> str:
        """Why the original's forward or backward raises on these inputs ('' if it runs)."""
        args = self.arguments(tensors, config, True)
        torch.manual_seed(SEED)
        step = "forward"
        try:
            out = self.original(*args)
            if isinstance(out, torch.Tensor) and out.requires_grad:
                step = "backward"
                inputs = [args[i] for i in self.diff]
                torch.autograd.grad(out, inputs, torch.ones_like(out), allow_unused=True)
        except Exception as exc:
            return f"raises in its {step}: {type(exc).__name__}: {first_line(exc)[:120]}"
        return ""

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
            if self.case.get("second_order"):
                second_order.check(self, candidate, tensors, config, precision, generator)
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
        if self.domain == "unit":  # probabilities: ±inf and NaN are outside the domain
            return int(tensors[0].numel())
        # Non-finite inputs: values only. Where a differentiable input is ±inf or NaN the
        # rewrite's value may be NaN (README, "Semantics"); every other difference counts.
        bad = [t.clone() for t in tensors]
        flat = bad[0].reshape(-1)
        flat[:3] = torch.tensor([math.inf, -math.inf, math.nan], dtype=flat.dtype)
        try:
            a_bad = self.call(self.original, self.arguments(bad, config, True), "original")
        except Isolation as exc:  # e.g. a Bernoulli of a NaN probability: say what the rewrite does
            try:
                self.call(candidate, self.arguments(bad, config, True), "rewrite")
                self.notes.add(f"for ±inf/NaN inputs {exc}; the rewrite does not raise")
            except Mismatch:
                self.notes.add(f"for ±inf/NaN inputs {exc}, and so does the rewrite")
            return int(tensors[0].numel())
        b_bad = self.call(candidate, self.arguments(bad, config, True), "rewrite")
        b_bad = forgive_nan_at_nonfinite(a_bad, b_bad, bad)
        if not same_values(a_bad, b_bad):
            raise Mismatch(
                "for non-finite inputs: "
                + value_difference(a_bad, b_bad, self.named(self.arguments(bad, config, True)))
            )
        return int(tensors[0].numel())

    # -- TorchScript ----------------------------------------------------------------------------
    def small_inputs(self, dtype: Any) -> list[Any]:
        generator = torch.Generator().manual_seed(1)
        config = self.config
        main = grid(dtype, list(config["values"].values()), generator, self.domain)[::3]
        shapes = variants(main, len(self.diff) - 1, generator, self.domain)
        return next(list(t) for label, t in shapes if label not in self.refused_shapes)

    @property
    def config(self) -> dict[str, Any]:
        """The hyperparameters of the TorchScript/compile/export checks: the first usable that
        passes them as the first configuration does (the wrappers are typed after it)."""
        configs = self.usable or self.case["configs"]
        typed = self.case["configs"][0].get("tensors", [])
        return next((c for c in configs if c.get("tensors", []) == typed), configs[0])

    def against_eager(
        self,
        compiled: Callable[..., Any],
        eager: Callable[..., Any],
        dtype_name: str,
        exact: bool,
        runs: int = 2,
        inference: bool = True,
        tolerance: str | None = None,
    ) -> None:
        """``compiled`` against ``eager`` on the small inputs: values bitwise when ``exact``
        (else within the float32 tolerance, noted), gradients at ``tolerance`` (a precision of
        ``compare.TOLERANCE``; by default the dtype's, as the gradient check)."""
        config = self.config
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
                self.notes.add(
                    "compiled or scripted values equal eager within tolerance, not bitwise"
                )
            if ge is None:
                continue
            if not c.requires_grad:
                raise Mismatch(f"no gradient ({dtype_name})")
            gc = torch.autograd.grad(c, [c_in[i] for i in self.diff], upstream, allow_unused=True)
            precision = "float32" if "float32" in (dtype_name, str(e.dtype)[6:]) else "float64"
            precision = tolerance or precision
            for i, x, y in zip(self.diff, ge, gc, strict=True):
                compare_gradient(self.params[i]["name"], x, y, precision, named, self.notes)
        if not inference:
            return
        with torch.no_grad():
            c0 = self.call(compiled, self.arguments(tensors, config, False), "rewrite")
        if not same_values(e, c0):
            if exact:
                raise Mismatch(
                    "under torch.no_grad(): " + value_difference(e, c0, self.named(e_in))
                )
            named = self.named(e_in)
            compare_gradient("the value under torch.no_grad()", e, c0, "float32", named, set())

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
                    # The gradient check's tolerance at float32 precision, in both dtypes: the
                    # TorchScript fuser reorders float operations, and a gradient with
                    # cancellation (``1 - tanh(x) ** 2`` at large x) then differs from eager by
                    # far more than float64 ulps (2.35e-11 absolute, 1.5e-8 relative measured on
                    # a published surrogate). A wrong emission is caught by the eager gradient
                    # check against the original at the dtype's own tolerance.
                    self.against_eager(
                        loaded, module, dtype_name, exact=False, tolerance=SCRIPT_TOLERANCE
                    )
                    if self.case.get("second_order"):
                        second_order.against_eager(self, loaded, module, dtype_name)
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
        config = self.config
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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300].rstrip(":") if text else ""


def run_case(case: dict[str, Any], level: str, workdir: str, index: int) -> dict[str, Any]:
    """The checks of one case; with ``user_import`` (``--verify-import-user-code``), a case
    whose original cannot be rebuilt or run in isolation is checked again with the original
    imported from the user's module."""
    result: dict[str, Any] = {"id": case["id"], "checks": {}, "original": {}, "notes": []}
    if not case.get("not_isolated"):
        result = run_checks(case, level, lambda: build_module(case, workdir, index))
        if "isolation" not in result or not case.get("user_import"):
            return result
        case = {**case, "not_isolated": result["isolation"]}
    if case.get("user_import"):
        result = run_checks(case, level, lambda: import_original(case, workdir, index))
        if not result.get("isolation", "").startswith("importing "):
            result["imported"] = case["user_import"]["module"]
        result["not_isolated"] = case["not_isolated"]
    return result


def import_original(case: dict[str, Any], workdir: str, index: int) -> types.ModuleType:
    """The case's module with the original Function taken from the user's module, imported (so
    executed) from its import root, and the emitted code beside it."""
    spec = case["user_import"]
    if spec["root"] not in sys.path:
        sys.path.insert(0, spec["root"])
    try:
        user = importlib.import_module(spec["module"])
        target: Any = user
        for part in spec["attribute"].split("."):
            target = getattr(target, part)
    except BaseException as exc:  # the user's module may do anything, SystemExit included
        raise Isolation(
            f"importing {spec['module']} fails: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    emitted = {**case, "chunks": [c for c in case["chunks"] if c.get("emitted")]}
    namespace = {k: v for k, v in vars(user).items() if not k.startswith("__")}
    namespace[case["class_name"]] = target
    module = build_module(emitted, workdir, index, namespace)
    module.__dict__["__fgi_user__"] = user  # the original reads its run-time state there
    return module


def run_checks(
    case: dict[str, Any], level: str, build: Callable[[], types.ModuleType]
) -> dict[str, Any]:
    result: dict[str, Any] = {"id": case["id"], "checks": {}, "original": {}, "notes": []}
    checks: dict[str, Any] = result["checks"]
    try:
        module = build()
        checker = Checker(case, module)
    except Isolation as exc:
        result["isolation"] = str(exc)
        return result
    except Mismatch as exc:
        checks["grad"] = {"ok": False, "detail": str(exc)}
        return result
    steps: list[tuple[str, Callable[[], object]]] = [("grad", checker.grad_check)]
    if case.get("eager_only"):  # run-time state TorchScript cannot compile: eager checks only
        checker.notes.add(case["eager_only"])
        level = "grad"
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
        if name == "grad" and case.get("plot") and plotter is not None:
            try:
                plotter.plot_case(checker, case, case["plot"], checks[name])
                result["plot"] = case["plot"]
            except Exception as exc:  # a plot is never a verdict on the rewrite
                result["plot_error"] = f"{type(exc).__name__}: {first_line(exc)}"
        if name == "grad" and not checks[name]["ok"]:
            break  # a wrong gradient is never written: the other checks do not matter
        if name == "script":
            result["original"]["script"] = checker.original_script()
    result["notes"] = sorted(checker.notes)
    result["skipped"] = checker.skipped
    result["largest_difference"] = checker.largest
    return result


def main() -> int:
    global torch, plotter
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
        compare.torch = torch
        second_order.torch = torch
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
    if job.get("modules"):  # --verify-modules: imports the user's rewritten files
        sibling("modules").check(job, send, torch, first_line)
        return 0
    if any(case.get("plot") for case in job["cases"]):
        try:
            loaded = sibling("plot")
            loaded.bind(globals())  # imports matplotlib
            plotter = loaded
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
