"""Hypothesis strategies that write random surrogate-gradient ``autograd.Function`` modules.

A generated module holds one surrogate Function, drawn from a small grammar, and an
``entry(x)`` (or ``entry(x, th)``) function that calls it through one of several call-site forms.
``tests/test_fuzz.py`` rewrites the module with fgi-rewrite and checks, by running both, that the
tool either refuses the Function with a code or keeps values and gradients.

The grammar:

* **forward** (the value): a step ``(u > 0).float()``, ``.to(x.dtype)``, ``.type_as(x)``,
  ``torch.gt``, ``torch.heaviside``, ``torch.where(u > 0, 1.0, 0.0)``, or a multi-level
  ``round``/``clamp``; ``u`` is ``x``, ``x - th`` (a second differentiable input of shape
  ``(C,)`` broadcast against ``x`` of shape ``(B, C)``) or ``x - vth`` (a hyperparameter);
* **g** (the surrogate derivative): a random expression tree over ``u``, constants and
  hyperparameters, built from ``exp``, ``sigmoid``, ``atan``, ``abs``, ``clamp``, ``where``,
  powers, products, sums and quotients;
* **hyperparameters**: on ``ctx`` (``ctx.alpha = alpha``, passed at the call site or left to the
  forward's default), class attributes, module constants;
* **forward style**: old-style ``forward(ctx, ...)`` or new-style ``forward(...)`` with
  ``setup_context``;
* **backward**: the ``saved_tensors`` unpacking forms, ``grad_output * g``, a local ``g``,
  ``grad_output / denominator``, ``torch.mul``, ``grad = grad_output.clone(); grad[mask] = 0``,
  ``masked_fill(_)``, a module-level helper; ``None`` slots for the hyperparameters;
* **call sites**: ``Fn.apply(...)``, a module alias, ``self.f = Fn.apply`` in an ``nn.Module``, a
  lambda, a list comprehension, a non-trivial argument expression.

``Program.source`` is the module's text; ``Program.inputs`` is 1 or 2 (``entry(x)`` or
``entry(x, th)``); ``Program.hyper_values`` the hyperparameter values, which the test adds to
its input grid (with ``x - th`` exactly 0 and ``x`` exactly at ``vth``); ``Program.style`` the
``--style`` (inline or function) to rewrite it with.

A few backward shapes (``POISON``) are deliberately not elementwise surrogates (an affine or
squared grad_output, a reduction, a random draw, a roll, a summed grad_output): the tool must
refuse them, and if it ever rewrote one the executed comparison would catch it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from hypothesis import strategies as st

CLASS = "FuzzSpike"
FILE = "fuzzmod.py"  # the module holding entry()

# Constants that appear in g. Small and positive, as in real surrogates; some make exp/atan steep.
CONSTANTS = ("0.5", "1.0", "2.0", "3.0", "0.25", "1.5", "4.0", "10.0")
HYPER_VALUES = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 25.0)
MECHANISMS = ("ctx_passed", "ctx_default", "class_attr", "module_const", "ctx_local")
# Backward shapes; POISON ones are not elementwise surrogates: the tool must refuse them (or, if
# it rewrites them, the executed comparison catches the wrong gradient).
POISON = {
    "poison_affine": "gx = grad_output * ({g}) + 0.125 * u",
    "poison_square": "gx = grad_output ** 2 * ({g})",
    "poison_mean": "gx = grad_output * ({g}) * u.abs().mean()",
    "poison_random": "gx = grad_output * ({g}) * torch.rand_like(u)",
    "poison_roll": "gx = (grad_output * ({g})).roll(1, 0)",
    "poison_sum_grad": "gx = grad_output.sum() * ({g})",
}
SHAPES = (
    "mul",
    "local",
    "div",
    "torch_mul",
    "clone_mask",
    "masked_fill",
    "helper",
    "window_cast",
    "where_grad",
    "sum_terms",
    "augmented",
    "ones_mask",
    "inplace",
    "math",
    "needs_input_grad",
    "saved_output",
    *POISON,
)


@dataclass(frozen=True)
class Hyper:
    name: str  # the forward parameter / attribute name
    value: float
    mechanism: str  # one of MECHANISMS

    @property
    def constant(self) -> str:
        return f"FUZZ_{self.name.upper()}"

    @property
    def is_input(self) -> bool:
        """A forward parameter (with a ``None`` gradient slot)."""
        return self.mechanism in ("ctx_passed", "ctx_default", "ctx_local")


@dataclass(frozen=True)
class Program:
    source: str
    inputs: int  # 1: entry(x); 2: entry(x, th)
    hyper_values: tuple[float, ...]
    features: tuple[str, ...] = field(default=())  # labels, for hypothesis.event statistics
    style: str = "inline"  # the tool's --style to rewrite it with
    extra: tuple[tuple[str, str], ...] = ()  # other modules beside it: (file name, source)

    def describe(self) -> str:
        """Every file, for a failure message (a minimal repro)."""
        files = ((FILE, self.source), *self.extra)
        return "\n".join(f"--- {name} ---\n{text}" for name, text in files) + (
            f"--- rewritten with --style {self.style} ---"
        )


# ---- expressions of g ---------------------------------------------------------------------------


def _hyper_ref(h: Hyper, style: str) -> str:
    """How the backward reads hyperparameter ``h``."""
    if h.mechanism in ("ctx_passed", "ctx_default"):
        return f"ctx.{h.name}"
    if h.mechanism == "ctx_local":
        return f"hp_{h.name}"  # a local bound from ctx at the top of backward
    if h.mechanism == "class_attr":
        return f"{CLASS}.{h.name}"
    return h.constant


@st.composite
def g_expressions(draw: st.DrawFn, refs: tuple[str, ...], depth: int = 3) -> str:
    """A random surrogate-derivative expression over ``u`` (a tensor) and ``refs``; always a
    tensor (scalars only appear as operands of arithmetic, ``where`` and powers)."""
    return draw(_g(refs, depth, True))


@st.composite
def _g(draw: st.DrawFn, refs: tuple[str, ...], depth: int, tensor: bool) -> str:
    """An expression; a tensor when ``tensor``, else possibly a plain number."""
    scalars = [*CONSTANTS, *refs]
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        if not tensor and draw(st.booleans()):
            return draw(st.sampled_from(scalars))
        leaf = draw(st.sampled_from(("u", "u.abs()", "torch.abs(u)", "scaled")))
        if leaf == "scaled":
            return f"{draw(st.sampled_from(scalars))} * u"
        return leaf
    sub = _g(refs, depth - 1, True)
    kind = draw(
        st.sampled_from(
            (
                "exp",
                "sigmoid",
                "atan",
                "abs",
                "clamp",
                "clamp_method",
                "where",
                "power",
                "pow_call",
                "mul",
                "add",
                "sub",
                "div",
                "neg",
            )
        )
    )
    a = draw(sub)
    if kind == "exp":
        return f"torch.exp(-({a}))" if draw(st.booleans()) else f"torch.exp({a})"
    if kind == "sigmoid":
        return draw(
            st.sampled_from(
                (f"torch.sigmoid({a})", f"({a}).sigmoid()", f"torch.special.expit({a})")
            )
        )
    if kind == "atan":
        return draw(st.sampled_from((f"torch.atan({a})", f"torch.arctan({a})")))
    if kind == "abs":
        return draw(st.sampled_from((f"torch.abs({a})", f"({a}).abs()")))
    if kind == "clamp":
        lo = draw(st.sampled_from(("0.0", "-1.0", "0.5")))
        hi = draw(st.sampled_from(("1.0", "2.0", "5.0")))
        return draw(
            st.sampled_from(
                (f"torch.clamp({a}, {lo}, {hi})", f"torch.clamp({a}, min={lo}, max={hi})")
            )
        )
    if kind == "clamp_method":
        bound = draw(st.sampled_from(("0.0", "1.0", "-0.5")))
        return draw(st.sampled_from((f"({a}).clamp(min={bound})", f"({a}).clamp(max={bound})")))
    if kind == "where":
        limit = draw(st.sampled_from(scalars))
        cond = draw(
            st.sampled_from(
                (f"u.abs() < {limit}", f"u > {limit}", "u <= 0", f"torch.abs(u) >= {limit}")
            )
        )
        b = draw(st.sampled_from((draw(_g(refs, depth - 1, False)), "0.0", "1.0")))
        return f"torch.where({cond}, {a}, {b})"
    if kind == "power":
        k = draw(st.sampled_from(("2", "3", "2.0", "0.5")))
        return f"({a}) ** {k}"
    if kind == "pow_call":
        k = draw(st.sampled_from(("2", "3")))
        return draw(st.sampled_from((f"torch.pow({a}, {k})", f"({a}).pow({k})")))
    if kind == "neg":
        return f"-({a})"
    b = draw(_g(refs, depth - 1, False))
    if draw(st.booleans()):
        a, b = b, a
    if kind == "mul":
        return f"({a}) * ({b})"
    if kind == "add":
        return f"({a}) + ({b})"
    if kind == "sub":
        return f"({a}) - ({b})"
    # Quotients: mostly the usual ``1 / (1 + ...)`` shapes, sometimes a raw one (0 / inf / nan).
    if draw(st.integers(0, 3)) == 0:
        return f"({a}) / ({b})"
    return f"({a}) / (1.0 + ({b}) ** 2)"


def _join(parts: list[str]) -> str:
    return "\n\n".join(p.rstrip("\n") + "\n" for p in parts if p.strip())


# ---- the Function ------------------------------------------------------------------------------


def _forward_value(draw: st.DrawFn, u: str, x: str) -> tuple[str, str]:
    """(forward value expression, label)."""
    kind = draw(
        st.sampled_from(
            ("float", "to", "type_as", "gt", "ge", "heaviside", "where", "round_clamp", "round_m")
        )
    )
    if kind == "float":
        return f"({u} > 0).float()", kind
    if kind == "to":
        return f"({u} > 0).to({x}.dtype)", kind
    if kind == "type_as":
        return f"({u} > 0).type_as({x})", kind
    if kind == "gt":
        return f"torch.gt({u}, 0).to({x}.dtype)", kind
    if kind == "ge":
        return f"({u} >= 0).float()", kind
    if kind == "heaviside":
        at_zero = draw(
            st.sampled_from(
                (f"torch.zeros_like({x})", f"torch.ones_like({x})", f"torch.full_like({x}, 0.5)")
            )
        )
        return f"torch.heaviside({u}, {at_zero})", kind
    if kind == "where":
        return f"torch.where({u} > 0, 1.0, 0.0)", kind
    levels = draw(st.sampled_from(("1", "2", "4")))
    if kind == "round_clamp":
        return f"torch.clamp(torch.round({u}), 0, {levels})", kind
    return f"({u}).round().clamp(min=0, max={levels})", kind


@st.composite
def programs(draw: st.DrawFn) -> Program:
    features: list[str] = []
    two_inputs = draw(st.booleans())
    new_style = draw(st.booleans())
    features.append("two inputs" if two_inputs else "one input")
    features.append("new-style" if new_style else "old-style")

    # Hyperparameters: 0..2 used in g, and optionally a forward threshold vth.
    hypers: list[Hyper] = []
    for name in ("alpha", "beta")[: draw(st.integers(0, 2))]:
        hypers.append(
            Hyper(name, draw(st.sampled_from(HYPER_VALUES)), draw(st.sampled_from(MECHANISMS)))
        )
    vth: Hyper | None = None
    if not two_inputs and draw(st.integers(0, 3)) == 0:
        vth = Hyper(
            "vth", draw(st.sampled_from((0.5, 1.0, 0.25))), draw(st.sampled_from(MECHANISMS))
        )
    all_hypers = [*hypers, *([vth] if vth else [])]
    # Forward parameters: those with a default last (Python's rule).
    positional = sorted(
        (h for h in all_hypers if h.is_input), key=lambda h: h.mechanism == "ctx_default"
    )
    features.extend(f"hyper {h.mechanism}" for h in all_hypers)

    refs = tuple(_hyper_ref(h, "backward") for h in hypers)
    g = draw(g_expressions(refs))

    # Forward: the value over u; what it saves; how it stores hyperparameters.
    inputs = ["x", "th"] if two_inputs else ["x"]
    forward_params = list(inputs)
    for h in positional:
        default = f"={h.value!r}" if h.mechanism == "ctx_default" else ""
        forward_params.append(f"{h.name}{default}")
    if vth is None:
        forward_u = "x - th" if two_inputs else "x"
    elif vth.is_input:
        forward_u = "x - vth"
    else:
        forward_u = f"x - {_hyper_ref(vth, 'forward')}"
    value, value_kind = _forward_value(draw, f"({forward_u})" if forward_u != "x" else "x", "x")
    features.append(f"value {value_kind}")
    if two_inputs and draw(st.booleans()) and value_kind in ("float", "to"):
        value = value.replace("((x - th) > 0)", "(x > th)")

    shape = draw(st.sampled_from(SHAPES))
    saves = draw(st.sampled_from(("inputs", "computed"))) if two_inputs else "inputs"
    save_line = "ctx.save_for_backward(x, th)" if two_inputs else "ctx.save_for_backward(x)"
    if saves == "computed":
        save_line = "ctx.save_for_backward(x - th)"
    if shape == "saved_output":  # the forward's result is saved too, and g uses it
        save_line = save_line[:-1] + (", output)" if new_style else ", out)")
    ctx_lines = [save_line] + [f"ctx.{h.name} = {h.name}" for h in positional]

    class_lines: list[str] = [
        f"{h.name} = {h.value!r}" for h in all_hypers if h.mechanism == "class_attr"
    ]
    module_lines: list[str] = [
        f"{h.constant} = {h.value!r}" for h in all_hypers if h.mechanism == "module_const"
    ]

    methods: list[str] = []
    if new_style:
        methods.append(
            "@staticmethod\n" f"def forward({', '.join(forward_params)}):\n" f"    return {value}\n"
        )
        unpack_names = ", ".join(p.split("=")[0] for p in forward_params)
        unpack = draw(st.sampled_from(("plain", "index")))
        setup = [f"{unpack_names}{',' if len(forward_params) == 1 else ''} = inputs"]
        if unpack == "index" and len(forward_params) > 1:
            setup = [f"{p.split('=')[0]} = inputs[{i}]" for i, p in enumerate(forward_params)]
        methods.append(
            "@staticmethod\n"
            "def setup_context(ctx, inputs, output):\n"
            + textwrap.indent("\n".join(setup + ctx_lines), "    ")
            + "\n"
        )
    else:
        methods.append(
            "@staticmethod\n"
            f"def forward(ctx, {', '.join(forward_params)}):\n"
            + textwrap.indent(
                "\n".join(
                    [f"out = {value}", *ctx_lines, "return out"]
                    if shape == "saved_output"
                    else [*ctx_lines, f"return {value}"]
                ),
                "    ",
            )
            + "\n"
        )

    # Backward: unpack, recompute u, build the gradient in one of several forms.
    body: list[str] = []
    if saves == "computed":
        form = draw(st.sampled_from(("paren", "bare", "list", "index")))
        target = "u"
    else:
        form = draw(st.sampled_from(("paren", "bare", "list", "index")))
        target = "x, th" if two_inputs else "x"
    if shape == "saved_output":
        target += ", out"
    features.append(f"unpack {form}")
    if form == "paren":
        body.append(
            f"({target},) = ctx.saved_tensors"
            if "," not in target
            else f"({target}) = ctx.saved_tensors"
        )
    elif form == "bare":
        body.append(
            f"{target}, = ctx.saved_tensors"
            if "," not in target
            else f"{target} = ctx.saved_tensors"
        )
    elif form == "list":
        body.append(f"[{target}] = ctx.saved_tensors")
    else:
        for i, name in enumerate(target.split(", ")):
            body.append(f"{name} = ctx.saved_tensors[{i}]")
    for h in all_hypers:
        if h.mechanism == "ctx_local":
            body.append(f"hp_{h.name} = ctx.{h.name}")
    if saves != "computed":
        if vth is not None:
            body.append(f"u = x - {_hyper_ref(vth, 'backward')}")
        else:
            body.append("u = x - th" if two_inputs else "u = x")

    helper: str | None = None
    features.append(f"backward {shape}")
    mask_limit = draw(st.sampled_from(("0.5", "1.0", *refs)))
    window = f"(u.abs() < {mask_limit})"
    if shape == "mul":
        body.append(
            draw(st.sampled_from((f"gx = grad_output * ({g})", f"gx = ({g}) * grad_output")))
        )
    elif shape == "local":
        body.append(f"sg = {g}")
        body.append("gx = grad_output * sg")
    elif shape == "div":
        body.append(
            draw(
                st.sampled_from(
                    (
                        f"gx = grad_output / (1.0 + ({g}) ** 2)",
                        f"gx = grad_output.div(1.0 + ({g}) ** 2)",
                    )
                )
            )
        )
    elif shape == "torch_mul":
        body.append(
            draw(
                st.sampled_from((f"gx = torch.mul(grad_output, {g})", f"gx = grad_output.mul({g})"))
            )
        )
    elif shape == "clone_mask":
        body.append("grad = grad_output.clone()")
        body.append(f"grad[u.abs() > {mask_limit}] = 0")
        if draw(st.booleans()):
            body.append("grad[u < -2.0] = 0.0")
        body.append(f"gx = grad * ({g})")
    elif shape == "masked_fill":
        if draw(st.booleans()):
            body.append(f"grad = grad_output.masked_fill(u.abs() > {mask_limit}, 0.0)")
        else:
            body.append("grad = grad_output.clone()")
            body.append(f"grad.masked_fill_(u.abs() > {mask_limit}, 0)")
        body.append(f"gx = grad * ({g})")
    elif shape == "window_cast":
        cast = draw(
            st.sampled_from(
                (".float()", ".to(grad_output.dtype)", ".type_as(u)", ".to(u.dtype)", ".double()")
            )
        )
        body.append(f"gx = grad_output * ({g}) * {window}{cast}")
    elif shape == "where_grad":
        zero = draw(st.sampled_from(("torch.zeros_like(grad_output)", "0.0")))
        body.append(f"gx = torch.where({window}, grad_output * ({g}), {zero})")
    elif shape == "sum_terms":
        g2 = draw(g_expressions(refs, 2))
        body.append(f"gx = grad_output * ({g}) + ({g2}) * grad_output")
    elif shape == "augmented":
        body.append("gx = grad_output.clone()")
        body.append(f"gx *= {g}")
        if draw(st.booleans()):
            body.append(f"gx = gx * {window}.float()")
    elif shape == "ones_mask":
        body.append("sg = torch.ones_like(u)")
        body.append(f"sg[u.abs() > {mask_limit}] = 0.0")
        body.append(f"gx = grad_output * sg * ({g})")
    elif shape == "inplace":
        body.append(f"sg = ({g}).clone()")
        body.append(draw(st.sampled_from(("sg.mul_(2.0)", "sg.abs_()", "sg.clamp_(max=3.0)"))))
        body.append("gx = grad_output * sg")
    elif shape == "math":
        constant = draw(
            st.sampled_from(("math.pi", "math.pi / 2", "math.sqrt(2.0)", "math.exp(-1.0)"))
        )
        body.append(f"gx = grad_output * ({g}) * {constant}")
    elif shape == "needs_input_grad":
        body.append("gx = None")
        body.append("if ctx.needs_input_grad[0]:")
        body.append(f"    gx = grad_output * ({g})")
    elif shape == "saved_output":
        body.append(f"gx = grad_output * ({g}) * (1.5 - out)")
    elif shape in POISON:
        body.append(POISON[shape].format(g=g))
    else:
        # Hyperparameters read from ctx (or a local) become the helper's parameters.
        helper_g, params, args = g, ["u"], ["u"]
        for h, ref in zip(hypers, refs, strict=True):
            if h.is_input:
                helper_g = helper_g.replace(ref, h.name)
                params.append(h.name)
                args.append(ref)
        helper = f"def fuzz_surrogate_grad({', '.join(params)}):\n    return {helper_g}\n"
        body.append(f"gx = grad_output * fuzz_surrogate_grad({', '.join(args)})")
    slots = ["gx"]
    if two_inputs and shape == "needs_input_grad":
        body += ["gth = None", "if ctx.needs_input_grad[1]:", f"    gth = -grad_output * ({g})"]
        slots.append("gth")
    elif two_inputs:
        slots.append(draw(st.sampled_from(("-gx", "gx.neg()", "-1.0 * gx", "gx * -1"))))
    slots.extend("None" for _ in positional)
    body.append(f"return {', '.join(slots)}" if len(slots) > 1 else "return gx")
    methods.append(
        "@staticmethod\n"
        "def backward(ctx, grad_output):\n" + textwrap.indent("\n".join(body), "    ") + "\n"
    )

    class_body = "\n".join([*class_lines, *([""] if class_lines else []), *methods])
    class_source = f"class {CLASS}(torch.autograd.Function):\n" + textwrap.indent(
        class_body.replace("\n\n@", "\n@").replace("\n@staticmethod", "\n\n@staticmethod"), "    "
    )

    # Call site: the hyperparameters that are forward inputs, in order; trailing ones with a
    # default may be left out.
    call_args: list[str] = []
    trailing = 0
    for h in reversed(positional):
        if h.mechanism != "ctx_default":
            break
        trailing += 1
    omit_from = len(positional) - draw(st.integers(0, trailing))
    for h in positional[:omit_from]:
        arg = draw(st.sampled_from((repr(h.value), f"FUZZ_CALL_{h.name.upper()}")))
        if arg.startswith("FUZZ_CALL_"):
            module_lines.append(f"{arg} = {h.value!r}")
        call_args.append(arg)
    hyper_values = tuple(h.value for h in all_hypers)
    features.append("hypers " + ("passed" if omit_from == len(positional) else "defaulted"))

    site = draw(st.sampled_from(("direct", "alias", "module", "lambda", "listcomp", "expression")))
    features.append(f"call {site}")
    argument = "x"
    if site == "expression":
        argument = draw(st.sampled_from(("x * 1.5 - 0.25", "torch.tanh(x) * 2.0", "(x + x) / 2.0")))
    th_arg = draw(st.sampled_from(("th", "th * 1.0"))) if two_inputs else None
    rest = ", ".join([*([th_arg] if th_arg else []), *call_args])

    def call(fn: str, arg: str) -> str:
        return f"{fn}({arg}{', ' + rest if rest else ''})"

    params = "x, th" if two_inputs else "x"
    entry: list[str] = []
    if site in ("direct", "expression"):
        entry.append(f"def entry({params}):\n    return {call(CLASS + '.apply', argument)}\n")
    elif site == "alias":
        entry.append(f"fuzz_spike = {CLASS}.apply\n")
        entry.append(f"def entry({params}):\n    return {call('fuzz_spike', argument)}\n")
    elif site == "module":
        # Hyperparameters held on the module (``self.hp0``) instead of literals, sometimes.
        attributes = ""
        if call_args and draw(st.booleans()):
            features.append("call hypers on self")
            values = [h.value for h in positional[: len(call_args)]]
            attributes = "".join(f"        self.hp{i} = {v!r}\n" for i, v in enumerate(values))
            rest = ", ".join(
                [*([th_arg] if th_arg else []), *(f"self.hp{i}" for i in range(len(values)))]
            )
        entry.append(
            "class FuzzNeuron(nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            f"{attributes}"
            f"        self.spike = {CLASS}.apply\n\n"
            f"    def forward(self, {params}):\n"
            f"        v = x * 1.0\n"
            f"        return {call('self.spike', 'v')}\n\n\n"
            f"def entry({params}):\n    return FuzzNeuron()({params})\n"
        )
    elif site == "lambda":
        entry.append(
            f"fuzz_fire = lambda {params.replace(', ', ', ')}: {call(CLASS + '.apply', 'x')}\n\n\n"
            f"def entry({params}):\n    return fuzz_fire({params})\n"
        )
    else:
        entry.append(
            f"def entry({params}):\n"
            f"    return sum([{call(CLASS + '.apply', 'x - s')} for s in (0.0, 0.25)])\n"
        )

    header = (
        '"""Generated by tests/fuzz_surrogates.py."""\n'
        "import math\n\nimport torch\nfrom torch import nn\n"
    )
    call_constants = [line for line in module_lines if line.startswith("FUZZ_CALL_")]
    definitions = [line for line in module_lines if not line.startswith("FUZZ_CALL_")]
    layout = draw(st.sampled_from(("one module", "one module", "from", "import module", "as")))
    features.append(f"layout {layout}")
    extra: tuple[tuple[str, str], ...] = ()
    if layout == "one module":
        parts = [header, "\n".join(module_lines), helper or "", class_source, *entry]
    else:
        # The Function lives in fuzzdefs.py; the call site imports it (the example project's
        # layout): names the surrogate reads must not leak into the calling module.
        alias = [p for p in entry if p.startswith("fuzz_spike = ")]
        calls = [p for p in entry if not p.startswith("fuzz_spike = ")]
        defs = [header, "\n".join(definitions), helper or "", class_source, *alias]
        extra = (("fuzzdefs.py", _join(defs)),)
        names = [CLASS] + (["fuzz_spike"] if alias else [])
        if layout == "from":
            imports = f"from fuzzdefs import {', '.join(names)}\n"
        elif layout == "as":
            imports = f"from fuzzdefs import {CLASS} as ImportedSpike\n"
            imports += "from fuzzdefs import fuzz_spike\n" if alias else ""
            calls = [c.replace(f"{CLASS}.apply", "ImportedSpike.apply") for c in calls]
        else:
            imports = "import fuzzdefs\n"
            calls = [
                c.replace(f"{CLASS}.apply", f"fuzzdefs.{CLASS}.apply").replace(
                    "fuzz_spike(", "fuzzdefs.fuzz_spike("
                )
                for c in calls
            ]
        parts = [header + imports, "\n".join(call_constants), *calls]
    source = _join(parts)
    for name, text in ((FILE, source), *extra):
        compile(text, name, "exec")  # the generator itself must write valid Python
    style = draw(st.sampled_from(("inline", "function")))
    features.append(f"style {style}")
    return Program(source, 2 if two_inputs else 1, hyper_values, tuple(features), style, extra)
