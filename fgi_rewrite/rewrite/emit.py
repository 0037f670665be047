"""Turn an extracted Surrogate and a call site's arguments into FGI code.

The emitted code computes the forward value exactly as the original forward does, and only when a
gradient can flow adds the injected term, whose value is zero and whose gradient is ``g_i`` for
each differentiable input::

    spk = (v > 0).float()
    if torch.is_grad_enabled() and v.requires_grad:
        _fgi_v_detached = v.detach()
        _fgi_v_grad = torch.nan_to_num(g(_fgi_v_detached), 0.0, 0.0, 0.0)
        spk = torch.addcmul(spk.detach(), v - _fgi_v_detached, _fgi_v_grad).to(spk.dtype)

``(v - v.detach())`` is exactly 0 for finite ``v``. ``g`` is built from detached inputs, so
masking it costs one forward kernel and nothing in the backward: the value stays the forward's
wherever ``g`` overflows too. Where an input is ±inf or NaN, ``v - v.detach()`` is NaN, and so is
the value: masking that would put a mask into the backward and cost about 15 % of an eager
training step (benchmarks/rsnn.py, docs/benchmarks.md); README, "Semantics", documents it.

Temporaries say what they hold: ``_fgi_<param>`` an argument evaluated once,
``_fgi_<param>_detached`` and ``_fgi_<param>_grad`` an input's detached value and surrogate
gradient (in the exact form also ``_fgi_<param>_delta``, ``v - v.detach()``, and
``_fgi_<param>_mid``, the midpoint), ``_fgi_out`` a result that no name of the user's receives,
and a subexpression computed once is named after its operation (``_fgi_sigmoid``,
``_fgi_product``). The caller's ``fresh`` makes each name unique in its scope.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import libcst as cst

from fgi_rewrite.core import ir
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.ir import OUTPUT
from fgi_rewrite.core.model import Form, Param, Surrogate
from fgi_rewrite.core.names import FreshNames
from fgi_rewrite.rewrite import control_flow

INDENT = "    "


@dataclass(frozen=True)
class Emission:
    statements: tuple[str, ...]  # source lines, unindented, to insert before the statement
    result: cst.BaseExpression  # what replaces the call
    moved: tuple[str, ...] = ()  # temporaries bound to the call's own argument expressions


def snake(name: str) -> str:
    # Split only after a lower-case letter or digit, so that ``ATanSpike`` is ``atan_spike``.
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def function_name(surrogate: Surrogate) -> str:
    base = f"{snake(surrogate.short_name)}_fgi"
    if not surrogate.constants and not surrogate.closure:
        return base
    specialization = (surrogate.constants, surrogate.closure)
    digest = hashlib.sha1(repr(specialization).encode()).hexdigest()[:6]
    return f"{base}_{digest}"


class _Tidy(cst.CSTTransformer):
    """Arithmetic on number literals folded (``6.0 * 0.5`` is ``3.0``): Python computes it in
    the same doubles at run time, so values are unchanged."""

    def leave_BinaryOperation(
        self, original: cst.BinaryOperation, updated: cst.BinaryOperation
    ) -> cst.BaseExpression:
        return _folded(updated)

    def leave_UnaryOperation(
        self, original: cst.UnaryOperation, updated: cst.UnaryOperation
    ) -> cst.BaseExpression:
        return _folded(updated)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        return _float_arguments(updated)


# Arguments that TorchScript types ``float`` in ``torch.nn.functional`` (their Python signatures
# are annotated, unlike the ``Scalar`` of ``torch.clamp``): an int literal there is a compile
# error, ``hardtanh(Tensor input, float min_val=-1., ...)``. Positions count the input as 0.
FLOAT_ARGUMENTS: dict[str, tuple[tuple[int, ...], frozenset[str]]] = {
    "torch.nn.functional.hardtanh": ((1, 2), frozenset({"min_val", "max_val"})),
    "torch.nn.functional.threshold": ((1, 2), frozenset({"threshold", "value"})),
    "torch.nn.functional.elu": ((1,), frozenset({"alpha"})),
    "torch.nn.functional.celu": ((1,), frozenset({"alpha"})),
    "torch.nn.functional.leaky_relu": ((1,), frozenset({"negative_slope"})),
    "torch.nn.functional.rrelu": ((1, 2), frozenset({"lower", "upper"})),
    "torch.nn.functional.dropout": ((1,), frozenset({"p"})),
    "torch.nn.functional.normalize": ((1, 3), frozenset({"p", "eps"})),
}


def _float_arguments(call: cst.Call) -> cst.Call:
    """``F.hardtanh(x, 0, 4)`` as ``F.hardtanh(x, 0.0, 4.0)``: the same values in eager mode
    (the function converts them), and the types TorchScript's schema wants."""
    spec = FLOAT_ARGUMENTS.get(sym.code(call.func))
    if spec is None:
        return call
    positions, keywords = spec
    args = []
    for position, arg in enumerate(call.args):
        wanted = arg.keyword.value in keywords if arg.keyword else position in positions
        value = sym.literal_value(arg.value)
        exact = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53
        if wanted and exact and not arg.star:
            assert isinstance(value, int)
            arg = arg.with_changes(value=cst.parse_expression(repr(float(value))))
        args.append(arg)
    return call.with_changes(args=args)


def _folded(node: cst.BaseExpression) -> cst.BaseExpression:
    value = sym.literal_value(node)
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) < 1e15
    ):
        text = repr(value)
        if float(text) == value and not (isinstance(node, cst.UnaryOperation) and value < 0):
            folded = cst.parse_expression(text)
            return sym.paren(folded) if value < 0 else folded
    return node


def _clean(node: cst.BaseExpression) -> cst.BaseExpression:
    """Single-line, tidy expressions, so that extracted code reads well wherever it goes. Made
    from the tree: a backslash continuation or a comment inside the original is whitespace
    there, and a string literal keeps its spaces."""
    result = node.visit(_Tidy())
    assert isinstance(result, cst.BaseExpression)
    return sym.one_line(result)


def _is_literal(node: cst.BaseExpression) -> bool:
    return sym.literal_value(node) is not NotImplemented


def _is_number(node: cst.BaseExpression) -> bool:
    value = sym.literal_value(node)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(g: cst.BaseExpression, detach: bool = False) -> str:
    """``g`` masked with ``torch.nan_to_num(g, 0, 0, 0)`` so that a ``g`` that overflows leaves
    the value exact and gives a zero gradient (a bounded ``g`` needs no mask). With ``detach``
    the masked ``g`` is detached too: it reads a hyperparameter that may be a tensor requiring
    grad (an ``nn.Parameter``), which the original's backward gives no gradient (its ``.grad``
    stays None; through ``(x - x.detach()) * g`` it would become a zero tensor). A bounded ``g``
    is built from comparisons, which carry no gradient."""
    if _bounded(g):
        return _bare(g)
    return f"torch.nan_to_num({_bare(g)}, 0.0, 0.0, 0.0)" + (".detach()" if detach else "")


def _injection(
    deltas: Sequence[cst.BaseExpression], grads: Sequence[cst.BaseExpression], output: str
) -> str:
    """``out.detach()`` plus ``(x_i - x_i.detach()) * g_i`` for each differentiable input: one
    ``torch.addcmul`` per input (one kernel, where a product and a sum take two), each ``g_i``
    already finite (``_finite``). A literal ``g`` needs no mask and no ``addcmul``."""
    result, is_sum = f"{output}.detach()", False
    for delta, g in zip(deltas, grads, strict=True):
        if not _is_number(g):
            result, is_sum = f"torch.addcmul({result}, {_bare(delta)}, {sym.code(g)})", False
            continue
        term = sym.paren(delta) if sym.literal_value(g) == 1 else sym.mul(sym.paren(delta), g)
        result, is_sum = f"{result} + {sym.code(term)}", True
    return f"({result}).to({output}.dtype)" if is_sum else f"{result}.to({output}.dtype)"


_CASTS = {"float", "double", "half", "bfloat16", "to", "type_as"}


def _bounded(node: cst.BaseExpression) -> bool:
    """``g`` is finite for every input: built from comparisons (0 or 1), number literals and
    ``torch.where`` between such, with casts, sums and products (``(v.abs() < 0.5).float()``,
    a boxcar). Then it needs no ``nan_to_num``."""
    if _is_number(node) or isinstance(node, cst.Comparison):
        return True
    if isinstance(node, cst.UnaryOperation):
        return not isinstance(node.operator, cst.Not) and _bounded(node.expression)
    if isinstance(node, cst.BinaryOperation):
        kinds = (cst.Add, cst.Subtract, cst.Multiply, cst.BitAnd, cst.BitOr)
        return isinstance(node.operator, kinds) and _bounded(node.left) and _bounded(node.right)
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        receiver, method = node.func.value, node.func.attr.value
        if method in _CASTS:
            return _bounded_cast(receiver, node)
        if sym.code(receiver) == "torch" and method == "where" and len(node.args) == 3:
            return all(_bounded(a.value) for a in node.args[1:])
    return False


def _bounded_cast(receiver: cst.BaseExpression, call: cst.Call) -> bool:
    """``x.float()`` or ``x.to(dtype)`` of a bounded ``x`` (never a device-only ``.to``)."""
    return _bounded(receiver) and all(
        a.keyword is None or a.keyword.value == "dtype" for a in call.args
    )


_SHAREABLE = (cst.Call, cst.BinaryOperation, cst.UnaryOperation, cst.Comparison)


def _bare(node: cst.BaseExpression) -> str:
    return sym.code(node.with_changes(lpar=[], rpar=[]))


def share_common(
    expressions: Sequence[cst.BaseExpression], fresh: Callable[[str], str]
) -> tuple[list[tuple[str, cst.BaseExpression]], list[cst.BaseExpression]]:
    """Common-subexpression elimination: a computation written twice (``sigmoid(a * x)`` in
    ``s * (1 - s)`` once inlined) is bound to a temporary and computed once, as the original
    computed it once into a local. Random draws are never merged. Returns the bindings in
    dependency order and the rewritten expressions."""
    bindings: list[tuple[str, cst.BaseExpression]] = []
    current = list(expressions)
    while True:
        counts = _count_shareable([*current, *(e for _, e in bindings)])
        repeated = [k for k, n in counts.items() if n > 1 and not _draws_random(k)]
        if not repeated:
            break
        chosen = max(repeated, key=len)
        name = fresh(f"_fgi_{describe(cst.parse_expression(chosen))}")
        bindings = [(n, _replace(e, chosen, name)) for n, e in bindings]
        current = [_replace(e, chosen, name) for e in current]
        bindings.append((name, cst.parse_expression(chosen)))
    return _dependency_order(bindings), current


_OPERATIONS = {
    cst.Add: "sum",
    cst.Subtract: "difference",
    cst.Multiply: "product",
    cst.Divide: "quotient",
    cst.Power: "power",
}


def describe(node: cst.BaseExpression) -> str:
    """A name for what ``node`` computes: the function it calls (``sigmoid``), through casts, or
    its operation (``product``, ``mask`` for a comparison)."""
    if isinstance(node, cst.Call):
        func = node.func
        if isinstance(func, cst.Attribute):
            if func.attr.value in _CASTS:
                return describe(func.value)
            return snake(func.attr.value).strip("_") or "value"
        if isinstance(func, cst.Name):
            return snake(func.value).strip("_") or "value"
        return "value"
    if isinstance(node, cst.BinaryOperation):
        return _OPERATIONS.get(type(node.operator), "value")
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        return "negated"
    if isinstance(node, cst.Comparison):
        return "mask"
    return "value"


def _count_shareable(expressions: Sequence[cst.BaseExpression]) -> dict[str, int]:
    counts: dict[str, int] = {}

    def visit(node: cst.CSTNode) -> None:
        if isinstance(node, _SHAREABLE) and sym.literal_value(node) is NotImplemented:
            key = _bare(node)
            counts[key] = counts.get(key, 0) + 1

    for expression in expressions:
        sym.walk(expression, visit)
    return counts


class _Replace(cst.CSTTransformer):
    def __init__(self, chosen: str, name: str) -> None:
        super().__init__()
        self.chosen, self.name = chosen, name

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        if isinstance(updated, _SHAREABLE) and _bare(updated) == self.chosen:
            return cst.Name(self.name)
        return updated


def _replace(node: cst.BaseExpression, chosen: str, name: str) -> cst.BaseExpression:
    result = node.visit(_Replace(chosen, name))
    assert isinstance(result, cst.BaseExpression)
    return result


def _draws_random(code: str) -> bool:
    return any(
        f"{name}(" in code
        for name in (
            "rand",
            "randn",
            "randint",
            "bernoulli",
            "normal",
            "poisson",
            "multinomial",
            "uniform_",
            "random_",
        )
    )


def _dependency_order(
    bindings: list[tuple[str, cst.BaseExpression]],
) -> list[tuple[str, cst.BaseExpression]]:
    ordered: list[tuple[str, cst.BaseExpression]] = []
    pending = list(bindings)
    while pending:
        defined = {n for n, _ in ordered}
        waiting = {n for n, _ in pending}
        ready = [(n, e) for n, e in pending if not (sym.names_in(e) & (waiting - {n}) - defined)]
        ordered.extend(ready)
        pending = [b for b in pending if b not in ready]
    return ordered


def _guard(names: Sequence[str]) -> str:
    needs = " or ".join(f"{n}.requires_grad" for n in names)
    return (
        f"torch.is_grad_enabled() and ({needs})"
        if len(names) > 1
        else (f"torch.is_grad_enabled() and {needs}")
    )


def emit_inline(
    surrogate: Surrogate,
    args: Sequence[cst.BaseExpression],
    fresh: Callable[[str], str],
    target: str | None,
    reserved: AbstractSet[str] = frozenset(),
) -> Emission:
    """Statements computing the call's result into ``target`` (or a fresh name).

    ``args`` has one expression per forward parameter (defaults already filled in). Each
    non-trivial argument is evaluated once, into a temporary, in the original order; so is an
    argument that is one of the ``reserved`` names (those the inserted code itself uses, such as
    ``torch``), so that the user's name and the inserted one never mix.
    """
    lines: list[str] = []
    moved: list[str] = []
    value_of: dict[str, cst.BaseExpression] = {}
    for param, arg in zip(surrogate.params, args, strict=True):
        if _is_literal(arg) or (isinstance(arg, cst.Name) and arg.value not in reserved):
            value_of[param.name] = arg
        else:
            temp = fresh(f"_fgi_{param.name}")
            lines.append(f"{temp} = {_movable(arg)}")
            moved.append(temp)
            value_of[param.name] = sym.name(temp)
    mentioned = set().union(*(sym.names_in(v) for v in value_of.values())) if value_of else set()
    mentioned |= set(reserved)
    output = target if target is not None and target not in mentioned else fresh("_fgi_out")
    value = _clean(sym.substitute(surrogate.value, value_of))

    witness = next(
        (value_of[surrogate.params[i].name] for i in surrogate.differentiable()),
        value_of[surrogate.params[0].name],
    )

    def value_leaf(expressions: tuple[cst.BaseExpression, ...]) -> list[str]:
        looped, expressions_ = control_flow.hoist(expressions, fresh, witness, INDENT)
        shared, (value,) = share_common(expressions_, fresh)
        return [
            *looped,
            *(f"{name} = {sym.code(e)}" for name, e in shared),
            f"{output} = {sym.code(value)}",
        ]

    # Run-time branches on hyperparameters (control_flow.py) become an if/elif chain.
    lines.extend(control_flow.render(control_flow.split([value]), value_leaf, INDENT))
    differentiable = [
        i for i in surrogate.differentiable() if not _is_number(value_of[surrogate.params[i].name])
    ]
    if differentiable and surrogate.form is not Form.FAST:
        lines.extend(exact_injection(surrogate, value_of, differentiable, output, fresh))
        return Emission(tuple(lines), sym.name(output))
    if differentiable:
        names = [sym.code(value_of[surrogate.params[i].name]) for i in differentiable]
        lines.append(f"if {_guard(names)}:")
        detached_of: dict[str, cst.BaseExpression] = {}
        for i in differentiable:
            input_name = surrogate.params[i].name
            temp = fresh(f"_fgi_{input_name}_detached")
            lines.append(f"{INDENT}{temp} = {sym.code(value_of[input_name])}.detach()")
            detached_of[input_name] = sym.name(temp)
        mapping = {**value_of, **detached_of, OUTPUT: sym.method(sym.name(output), "detach")}
        grads = [_clean(sym.substitute(_grad(surrogate, i), mapping)) for i in differentiable]
        deltas = [
            sym.binop(
                value_of[surrogate.params[i].name],
                cst.Subtract(),
                detached_of[surrogate.params[i].name],
            )
            for i in differentiable
        ]

        first_detached = detached_of[surrogate.params[differentiable[0]].name]
        grad_names: dict[int, str] = {}  # one name per input, in every branch
        detach = _reads_tensor_hyperparameter(surrogate, value_of, grads)

        def grad_leaf(expressions: tuple[cst.BaseExpression, ...]) -> list[str]:
            looped, expressions_ = control_flow.hoist(expressions, fresh, first_detached, INDENT)
            shared, grads = share_common(expressions_, fresh)
            bound: list[str] = []
            for position, g in enumerate(grads):
                if _is_number(g):
                    continue
                if position not in grad_names:
                    input_name = surrogate.params[differentiable[position]].name
                    grad_names[position] = fresh(f"_fgi_{input_name}_grad")
                bound.append(f"{grad_names[position]} = {_finite(g, detach)}")
                grads[position] = sym.name(grad_names[position])
            return [
                *looped,
                *(f"{name} = {sym.code(e)}" for name, e in shared),
                *bound,
                f"{output} = {_injection(deltas, grads, output)}",
            ]

        block = control_flow.render(control_flow.split(grads), grad_leaf, INDENT)
        lines.extend(f"{INDENT}{line}" for line in block)
    return Emission(tuple(lines), sym.name(output), tuple(moved))


def _reads_tensor_hyperparameter(
    surrogate: Surrogate,
    value_of: dict[str, cst.BaseExpression],
    grads: Sequence[cst.BaseExpression],
) -> bool:
    """Whether a gradient reads a hyperparameter (an input without a gradient) that is not a
    number literal here, so may be a tensor that requires grad."""
    names = {sym.code(value_of[p.name]) for p in _maybe_tensor_hyperparameters(surrogate, value_of)}
    return bool(names) and any(names & sym.names_in(g) for g in grads)


def _maybe_tensor_hyperparameters(
    surrogate: Surrogate, value_of: Mapping[str, cst.BaseExpression]
) -> list[Param]:
    """The hyperparameters (inputs without a gradient) whose value here is not a number
    literal: they may be tensors that require grad."""
    return [
        param
        for param, grad in zip(surrogate.params, surrogate.grads, strict=True)
        if grad is None and param.name in value_of and not _is_number(value_of[param.name])
    ]


def exact_injection(
    surrogate: Surrogate,
    value_of: Mapping[str, cst.BaseExpression],
    differentiable: Sequence[int],
    output: str,
    fresh: Callable[[str], str],
) -> list[str]:
    """The exact form (``Form.EXACT``, README "Higher-order gradients"): ``g`` evaluated at the
    midpoint ``m = v - 0.5 * (v - v.detach())``, whose value is ``v`` (``-0.0`` included) and
    whose derivative is 1/2, so that ``out.detach() + (v - v.detach()) * g(m)`` has the value
    ``f(v)``, the first derivative ``g(v)`` and the second derivative ``g'(v)`` (1/2 from each
    factor), as a backward written in torch ops gives under ``create_graph=True``::

        spk = (v > 0).float()
        if torch.is_grad_enabled() and v.requires_grad:
            _fgi_v_detached = v.detach()
            _fgi_v_delta = v - _fgi_v_detached
            _fgi_v_mid = v - 0.5 * _fgi_v_delta
            _fgi_v_grad = torch.nan_to_num(g(_fgi_v_mid), 0.0, 0.0, 0.0)
            spk = torch.addcmul(spk.detach(), _fgi_v_delta, _fgi_v_grad).to(spk.dtype)

    The mask, the cast, the guard, branches and loops are the fast form's. ``nan_to_num``
    passes the derivative where ``g`` is finite and 0 elsewhere; what ``g`` reads through
    ``.detach()`` or comparisons (a boxcar) has no derivative here, as in the original. A ``g``
    that reads the forward value gets it at the midpoint too (``_fgi_out_mid = out.detach() +
    0.5 * (v - v.detach()) * g(v.detach())``), since the original's saved output carries its
    backward's gradient. With several inputs the mixed second derivatives are symmetric (the
    rewrite is a function); verification compares them with the original's."""
    names = [sym.code(value_of[surrogate.params[i].name]) for i in differentiable]
    forward_mode = surrogate.form is Form.EXACT_FORWARD_MODE
    lines = ["if torch.is_grad_enabled():" if forward_mode else f"if {_guard(names)}:"]
    detached: dict[str, cst.BaseExpression] = {}
    midpoints: dict[str, cst.BaseExpression] = {}
    deltas: list[cst.BaseExpression] = []
    steps: list[tuple[str, str]] = []  # (name, line) of the midpoints, kept where g reads them
    for i, value in zip(differentiable, names, strict=True):
        name = surrogate.params[i].name
        d, delta = fresh(f"_fgi_{name}_detached"), fresh(f"_fgi_{name}_delta")
        m = fresh(f"_fgi_{name}_mid")
        lines += [f"{INDENT}{d} = {value}.detach()", f"{INDENT}{delta} = {value} - {d}"]
        steps.append((m, f"{INDENT}{m} = {value} - 0.5 * {delta}"))
        detached[name], midpoints[name] = sym.name(d), sym.name(m)
        deltas.append(sym.name(delta))
    reads_output = any(sym.mentions(_grad(surrogate, i), OUTPUT) for i in differentiable)
    hyper = _detached_hyperparameters(surrogate, value_of, differentiable, fresh)
    lines += [line for _, line in hyper.values()]
    fixed = {**value_of, **{name: sym.name(t) for name, (t, _) in hyper.items()}}
    at_midpoint = {**fixed, **midpoints}
    hats: list[cst.BaseExpression] = []
    if reads_output:
        out_mid = fresh("_fgi_out_mid")
        at_midpoint[OUTPUT] = sym.name(out_mid)
        at_detached = {**fixed, **detached, OUTPUT: sym.method(sym.name(output), "detach")}
        hats = [_clean(sym.substitute(_grad(surrogate, i), at_detached)) for i in differentiable]
    grads = [_clean(sym.substitute(_grad(surrogate, i), at_midpoint)) for i in differentiable]
    used = set().union(*(sym.names_in(g) for g in grads))
    lines += [line for m, line in steps if m in used]
    halves = [sym.binop(cst.Float("0.5"), cst.Multiply(), d) for d in deltas]
    first_midpoint = next(iter(midpoints.values()))
    bound_names: dict[tuple[str, int], str] = {}  # one name per input and kind, in every branch

    def bind(
        kind: str, expressions: Sequence[cst.BaseExpression]
    ) -> tuple[list[str], list[cst.BaseExpression]]:
        """Statements binding each masked ``g_i`` to ``_fgi_<input>_<kind>`` (a literal stays
        inline), and the expressions that then stand for them."""
        looped, expressions_ = control_flow.hoist(expressions, fresh, first_midpoint, INDENT)
        shared, grads_ = share_common(expressions_, fresh)
        block = [*looped, *(f"{n} = {sym.code(e)}" for n, e in shared)]
        for position, g in enumerate(grads_):
            if _is_number(g):
                continue
            key = (kind, position)
            if key not in bound_names:
                input_name = surrogate.params[differentiable[position]].name
                bound_names[key] = fresh(f"_fgi_{input_name}_{kind}")
            block.append(f"{bound_names[key]} = {_finite(g)}")
            grads_[position] = sym.name(bound_names[key])
        return block, grads_

    def leaf(expressions: tuple[cst.BaseExpression, ...]) -> list[str]:
        block: list[str] = []
        if reads_output:
            bound, at_detached_ = bind("grad_detached", expressions[: len(hats)])
            block += [*bound, f"{out_mid} = {_injection(halves, at_detached_, output)}"]
        bound, at_midpoint_ = bind("grad", expressions[len(hats) :])
        return [*block, *bound, f"{output} = {_injection(deltas, at_midpoint_, output)}"]

    tree = control_flow.split([*hats, *grads])
    lines.extend(f"{INDENT}{line}" for line in control_flow.render(tree, leaf, INDENT))
    return lines


def _detached_hyperparameters(
    surrogate: Surrogate,
    value_of: Mapping[str, cst.BaseExpression],
    differentiable: Sequence[int],
    fresh: Callable[[str], str],
) -> dict[str, tuple[str, str]]:
    """For the exact form: each hyperparameter ``g`` reads that is not a number literal, bound
    to its value cut from autograd when it is a tensor (``alpha.detach() if isinstance(alpha,
    torch.Tensor) else alpha``: TorchScript refines the type, a float passes as it is). An
    ``nn.Parameter`` the original's backward gives ``None`` then keeps ``.grad`` None, as in the
    fast form (whose detached factor does the same). Name -> (temporary, its line)."""
    read = set().union(*(sym.names_in(_grad(surrogate, i)) for i in differentiable))
    found: dict[str, tuple[str, str]] = {}
    for param in _maybe_tensor_hyperparameters(surrogate, value_of):
        if param.name not in read:
            continue
        code = sym.code(value_of[param.name])
        temp = fresh(f"_fgi_{param.name}_detached")
        line = f"{INDENT}{temp} = {code}.detach() if isinstance({code}, torch.Tensor) else {code}"
        found[param.name] = (temp, line)
    return found


def _movable(arg: cst.BaseExpression) -> str:
    """An argument's code for a statement of its own. An argument split over lines inside the
    call's parentheses (black's layout of a long argument) gets parentheses of its own, which
    black, formatting the inserted block, keeps only where the line needs them."""
    code = sym.code(arg)
    own = "\n" in code or isinstance(arg, cst.NamedExpr)  # ``_fgi_v = (y := v - 1)``
    return sym.code(sym.paren(arg)) if own and not arg.lpar else code


def _default_text(param: Param, annotation: str) -> str:
    if param.default is None:
        return ""
    default = sym.code(param.default)
    if annotation == ": torch.Tensor" and _is_number(param.default):
        # A differentiable input with a number default (``threshold=1.0``): TorchScript wants a
        # Tensor default for a Tensor parameter.
        default = f"torch.tensor({default})"
    return f"{' = ' if annotation else '='}{default}"


def _grad(surrogate: Surrogate, index: int) -> cst.BaseExpression:
    grad = surrogate.grads[index]
    assert grad is not None
    return grad


def _annotation(surrogate: Surrogate, index: int) -> str:
    if surrogate.grads[index] is not None:
        return ": torch.Tensor"
    expressions = (surrogate.value, *[g for g in surrogate.grads if g is not None])
    if surrogate.params[index].name in ir.range_names(expressions):
        return ": int"  # a bound of a run-time loop (control_flow.py)
    default = surrogate.params[index].default
    value = sym.literal_value(default) if default is not None else NotImplemented
    for kind in (bool, int, float):
        if isinstance(value, kind):
            return f": {kind.__name__}"
    if tensor_default(default):
        return ""  # TorchScript's default type, Tensor
    if value is NotImplemented and not used_as_tensor(surrogate, surrogate.params[index].name):
        # A hyperparameter only used in arithmetic: TorchScript would otherwise take it for a
        # Tensor and reject the float that call sites pass.
        return ": float"
    return ""


def tensor_default(default: cst.BaseExpression | None) -> bool:
    """``torch.tensor(2.0**16)`` and the like: a parameter with such a default is a Tensor."""
    return isinstance(default, cst.Call) and sym.code(default.func) in (
        "torch.tensor",
        "torch.as_tensor",
        "torch.scalar_tensor",
    )


def used_as_tensor(surrogate: Surrogate, name: str) -> bool:
    """Whether ``name`` has a method called or an attribute read in f or g."""
    found = False

    def visit(node: cst.CSTNode) -> None:
        nonlocal found
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
            found = found or node.value.value == name

    for expression in (surrogate.value, *[g for g in surrogate.grads if g is not None]):
        sym.walk(expression, visit)
    return found


def emit_function(surrogate: Surrogate, name: str) -> str:
    """A module-level function with the same parameters (and defaults) as the forward, so that
    it can stand wherever ``Fn.apply`` did: expression contexts (lambdas, comprehensions, default
    arguments), stored references, and ``--style function``."""
    params = ", ".join(
        f"{p.name}{_annotation(surrogate, i)}{_default_text(p, _annotation(surrogate, i))}"
        for i, p in enumerate(surrogate.params)
    )
    fresh = FreshNames(p.name for p in surrogate.params)
    emission = emit_inline(
        surrogate, [sym.name(p.name) for p in surrogate.params], fresh, fresh("out")
    )
    body = [*emission.statements, f"return {sym.code(emission.result)}"]
    lines = [f"def {name}({params}) -> torch.Tensor:"]
    lines.extend(f"{INDENT}{line}" for line in body)
    return "\n".join(lines) + "\n"
