"""The markers of the intermediate representation: names no user identifier uses, standing for
what an extracted expression cannot say in plain Python.

Analysis builds expressions with them (the forward value, ``grad_output``, a branch that raises, a
run-time loop); the emitter and the checks read them back. Kept in one place so that neither side
depends on the other to know them.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import libcst as cst

from fgi_rewrite.core import symbolic as sym

GRAD_OUTPUT = "__fgi_grad_output__"
OUTPUT = "__fgi_output__"
# ``__fgi_raise__(ValueError("..."))``: a branch of a run-time ``if`` that raises (emitted as
# ``raise ValueError("...")``).
RAISE = "__fgi_raise__"
UNBOUND = "__fgi_unbound__"  # a name bound in one branch only (an error if used after the if)
# ``__fgi_loop__(start, stop, step, init, update)``: a run-time loop over a hyperparameter, with
# the loop index and the accumulated variable as placeholders in ``update``.
LOOP = "__fgi_loop__"
INDEX = "__fgi_loop_index__"
ACC = "__fgi_loop_acc__"
PLACEHOLDERS = frozenset({INDEX, ACC})


def raise_marker(exception: cst.BaseExpression | None) -> cst.Call:
    """The value of a ``raise`` statement; its exception is kept when it is a builtin exception
    built from literals, else a RuntimeError says that the original raised."""
    kept: cst.BaseExpression = cst.parse_expression('RuntimeError("raised by the original")')
    if (
        isinstance(exception, cst.Call)
        and isinstance(exception.func, cst.Name)
        and isinstance(getattr(builtins, exception.func.value, None), type)
        and issubclass(getattr(builtins, exception.func.value), Exception)
        and all(sym.literal_value(a.value) is not NotImplemented for a in exception.args)
    ):
        kept = exception
    return sym.call(RAISE, kept)


def is_raise(value: object) -> bool:
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Name)
        and value.func.value == RAISE
    )


def raised_exceptions(expression: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The exceptions of the raise markers in ``expression``."""
    found: list[cst.BaseExpression] = []

    def visit(node: cst.CSTNode) -> None:
        if is_raise(node) and isinstance(node, cst.Call):
            found.append(node.args[0].value)

    sym.walk(expression, visit)
    return found


def loop(
    bounds: Sequence[cst.BaseExpression], init: cst.BaseExpression, update: cst.BaseExpression
) -> cst.Call:
    """``range(*bounds)`` normalized to (start, stop, step)."""
    if len(bounds) == 1:
        bounds = (cst.Integer("0"), bounds[0], cst.Integer("1"))
    elif len(bounds) == 2:
        bounds = (bounds[0], bounds[1], cst.Integer("1"))
    return sym.call(LOOP, *bounds, init, update)


def is_loop(node: cst.CSTNode) -> bool:
    return (
        isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == LOOP
    )


def range_names(expressions: Sequence[cst.BaseExpression]) -> set[str]:
    """Names used in the bounds of run-time loops (they must be ints for TorchScript)."""
    names: set[str] = set()

    def visit(node: cst.CSTNode) -> None:
        if is_loop(node) and isinstance(node, cst.Call):
            for arg in node.args[:3]:
                names.update(sym.names_in(arg.value))

    for expression in expressions:
        sym.walk(expression, visit)
    return names
