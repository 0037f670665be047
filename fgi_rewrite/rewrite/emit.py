"""Turn an extracted Surrogate and a call site's arguments into FGI code.

The emitted code computes the forward value exactly as the original forward does, and only when a
gradient can flow adds the injected term, whose value is zero and whose gradient is ``g_i`` for
each differentiable input::

    spk = (v > 0).float()
    if torch.is_grad_enabled() and v.requires_grad:
        _fgi_v = v.detach()
        _fgi_g = torch.nan_to_num(g(_fgi_v), 0.0, 0.0, 0.0)  # emitted inline
        spk = torch.addcmul(spk.detach(), v - _fgi_v, _fgi_g).to(spk.dtype)

``(v - v.detach())`` is exactly 0 for finite ``v``. ``g`` is built from detached inputs, so
masking it costs one forward kernel and nothing in the backward: the value stays the forward's
wherever ``g`` overflows too. Where an input is ±inf or NaN, ``v - v.detach()`` is NaN, and so is
the value: masking that would put a mask into the backward and cost about 15 % of an eager
training step (benchmarks/rsnn.py, docs/benchmarks.md); README, "Semantics", documents it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import libcst as cst

from fgi_rewrite.core import ir
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.ir import OUTPUT
from fgi_rewrite.core.model import Param, Surrogate
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
    """One line of whitespace, and arithmetic on number literals folded (``6.0 * 0.5`` is
    ``3.0``): Python computes it in the same doubles at run time, so values are unchanged."""

    def leave_ParenthesizedWhitespace(
        self, original: cst.ParenthesizedWhitespace, updated: cst.ParenthesizedWhitespace
    ) -> cst.SimpleWhitespace:
        return cst.SimpleWhitespace(" ")

    def leave_BinaryOperation(
        self, original: cst.BinaryOperation, updated: cst.BinaryOperation
    ) -> cst.BaseExpression:
        return _folded(updated)

    def leave_UnaryOperation(
        self, original: cst.UnaryOperation, updated: cst.UnaryOperation
    ) -> cst.BaseExpression:
        return _folded(updated)


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
    """Single-line, tidy expressions, so that extracted code reads well wherever it goes."""
    result = node.visit(_Tidy())
    assert isinstance(result, cst.BaseExpression)
    code = sym.code(result)
    return cst.parse_expression(" ".join(code.split()).replace("( ", "(").replace(" )", ")"))


def _is_literal(node: cst.BaseExpression) -> bool:
    return sym.literal_value(node) is not NotImplemented


def _is_number(node: cst.BaseExpression) -> bool:
    value = sym.literal_value(node)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _injection(
    deltas: Sequence[cst.BaseExpression], grads: Sequence[cst.BaseExpression], output: str
) -> str:
    """``out.detach()`` plus ``(x_i - x_i.detach()) * g_i`` for each differentiable input: one
    ``torch.addcmul`` per input (one kernel, where a product and a sum take two), each ``g_i``
    masked with ``torch.nan_to_num(g_i, 0, 0, 0)`` so that a ``g`` that overflows leaves the value
    exact and gives a zero gradient. A literal ``g`` needs no mask and no ``addcmul``."""
    result, is_sum = f"{output}.detach()", False
    for delta, g in zip(deltas, grads, strict=True):
        if not _is_number(g):
            finite = (
                sym.code(g) if _bounded(g) else f"torch.nan_to_num({sym.code(g)}, 0.0, 0.0, 0.0)"
            )
            result, is_sum = f"torch.addcmul({result}, {_bare(delta)}, {finite})", False
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
        name = fresh("_fgi_t")
        bindings = [(n, _replace(e, chosen, name)) for n, e in bindings]
        current = [_replace(e, chosen, name) for e in current]
        bindings.append((name, cst.parse_expression(chosen)))
    return _dependency_order(bindings), current


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
            lines.append(f"{temp} = {sym.code(arg)}")
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
    if differentiable:
        names = [sym.code(value_of[surrogate.params[i].name]) for i in differentiable]
        lines.append(f"if {_guard(names)}:")
        detached_of: dict[str, cst.BaseExpression] = {}
        for i in differentiable:
            input_name = surrogate.params[i].name
            temp = fresh(f"_fgi_{input_name}_d")
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

        def grad_leaf(expressions: tuple[cst.BaseExpression, ...]) -> list[str]:
            looped, expressions_ = control_flow.hoist(expressions, fresh, first_detached, INDENT)
            shared, grads = share_common(expressions_, fresh)
            injection = _injection(deltas, grads, output)
            return [
                *looped,
                *(f"{name} = {sym.code(e)}" for name, e in shared),
                f"{output} = {injection}",
            ]

        block = control_flow.render(control_flow.split(grads), grad_leaf, INDENT)
        lines.extend(f"{INDENT}{line}" for line in block)
    return Emission(tuple(lines), sym.name(output), tuple(moved))


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
