"""Turn an extracted Surrogate and a call site's arguments into FGI code.

The emitted code computes the forward value exactly as the original forward does, and only when a
gradient can flow adds the injected term, whose value is exactly zero and whose gradient is
``g_i`` for each differentiable input::

    spk = (v > 0).float()
    if torch.is_grad_enabled() and v.requires_grad:
        _fgi_v = v.detach()
        spk = spk.detach() + torch.nan_to_num((v - _fgi_v) * g(_fgi_v)).to(spk.dtype)

``(v - v.detach())`` is exactly 0 for finite ``v``; ``nan_to_num`` keeps the value exactly the
forward's where ``v`` or ``g`` is not finite (the gradient there is 0).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import libcst as cst

from fgi_rewrite import symbolic as sym
from fgi_rewrite.model import OUTPUT, Surrogate

INDENT = "    "


@dataclass(frozen=True)
class Emission:
    statements: tuple[str, ...]  # source lines, unindented, to insert before the statement
    result: cst.BaseExpression  # what replaces the call


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


def _clean(node: cst.BaseExpression) -> cst.BaseExpression:
    """Single-line whitespace, so that extracted expressions read well wherever they go."""

    class Flatten(cst.CSTTransformer):
        def leave_ParenthesizedWhitespace(
            self, original: cst.ParenthesizedWhitespace, updated: cst.ParenthesizedWhitespace
        ) -> cst.SimpleWhitespace:
            return cst.SimpleWhitespace("")

    result = node.visit(Flatten())
    assert isinstance(result, cst.BaseExpression)
    code = sym.code(result)
    return cst.parse_expression(" ".join(code.split()).replace("( ", "(").replace(" )", ")"))


def _is_literal(node: cst.BaseExpression) -> bool:
    return sym.literal_value(node) is not NotImplemented


def _is_number(node: cst.BaseExpression) -> bool:
    value = sym.literal_value(node)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _injection(
    surrogate: Surrogate,
    value_of: Mapping[str, cst.BaseExpression],
    detached_of: Mapping[str, cst.BaseExpression],
    differentiable: Sequence[int],
    output: str,
) -> str:
    """``torch.nan_to_num(sum_i (x_i - x_i.detach()) * g_i)`` in terms of the call's values."""
    terms = []
    for i in differentiable:
        param = surrogate.params[i].name
        grad = surrogate.grads[i]
        assert grad is not None
        mapping = {**value_of, **detached_of, OUTPUT: sym.method(sym.name(output), "detach")}
        g = _clean(sym.substitute(grad, mapping))
        delta = sym.binop(value_of[param], cst.Subtract(), detached_of[param])
        if _is_number(g) and sym.literal_value(g) == 1:
            terms.append(sym.code(sym.paren(delta)))
        else:
            terms.append(sym.code(sym.mul(sym.paren(delta), g)))
    return f"torch.nan_to_num({' + '.join(terms)}).to({output}.dtype)"


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
) -> Emission:
    """Statements computing the call's result into ``target`` (or a fresh name).

    ``args`` has one expression per forward parameter (defaults already filled in). Each
    non-trivial argument is evaluated once, into a temporary, in the original order.
    """
    lines: list[str] = []
    value_of: dict[str, cst.BaseExpression] = {}
    for param, arg in zip(surrogate.params, args, strict=True):
        if _is_literal(arg) or isinstance(arg, cst.Name):
            value_of[param.name] = arg
        else:
            temp = fresh(f"_fgi_{param.name}")
            lines.append(f"{temp} = {sym.code(arg)}")
            value_of[param.name] = sym.name(temp)
    mentioned = set().union(*(sym.names_in(v) for v in value_of.values())) if value_of else set()
    output = target if target is not None and target not in mentioned else fresh("_fgi_out")
    value = _clean(sym.substitute(surrogate.value, value_of))
    lines.append(f"{output} = {sym.code(value)}")
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
        injection = _injection(surrogate, value_of, detached_of, differentiable, output)
        lines.append(f"{INDENT}{output} = {output}.detach() + {injection}")
    return Emission(tuple(lines), sym.name(output))


def _annotation(surrogate: Surrogate, index: int) -> str:
    if surrogate.grads[index] is not None:
        return ": torch.Tensor"
    default = surrogate.params[index].default
    value = sym.literal_value(default) if default is not None else NotImplemented
    for kind in (bool, int, float):
        if isinstance(value, kind):
            return f": {kind.__name__}"
    if value is NotImplemented and not _used_as_tensor(surrogate, surrogate.params[index].name):
        # A hyperparameter only used in arithmetic: TorchScript would otherwise take it for a
        # Tensor and reject the float that call sites pass.
        return ": float"
    return ""


def _used_as_tensor(surrogate: Surrogate, name: str) -> bool:
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
    """A module-level function with the same parameters as the forward, for expression contexts
    (lambdas, comprehensions, default arguments) and ``--style function``."""
    params = ", ".join(
        f"{p.name}{_annotation(surrogate, i)}" for i, p in enumerate(surrogate.params)
    )
    taken = {p.name for p in surrogate.params}

    def fresh(base: str) -> str:
        candidate, n = base, 1
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        return candidate

    emission = emit_inline(
        surrogate, [sym.name(p.name) for p in surrogate.params], fresh, fresh("out")
    )
    body = [*emission.statements, f"return {sym.code(emission.result)}"]
    lines = [f"def {name}({params}) -> torch.Tensor:"]
    lines.extend(f"{INDENT}{line}" for line in body)
    return "\n".join(lines) + "\n"
