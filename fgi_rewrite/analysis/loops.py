"""Run-time loops over a hyperparameter: ``for i in range(1, n):`` where ``n`` is not known
statically (a Fourier-series surrogate summing ``n - 1`` harmonics).

The interpreter runs the body once with the loop variable and the one variable the loop updates
as placeholders; the updated variable then stands for ``__fgi_loop__(start, stop, step, init,
update)``, an expression the checks read like any other. The emitter hoists each such
expression into statements before the code that uses it::

    _fgi_acc = torch.zeros_like(x) + 0.0     # a tensor from the start: TorchScript keeps types
    for _fgi_i in range(1, n):
        _fgi_acc = _fgi_acc + torch.cos((2 * _fgi_i - 1.0) * w * x)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import libcst as cst

from fgi_rewrite.analysis import branches
from fgi_rewrite.analysis import elementwise as ew
from fgi_rewrite.analysis.values import Frame, Refuse
from fgi_rewrite.core import codes
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.project.source_module import dotted_name

if TYPE_CHECKING:
    from fgi_rewrite.analysis.interpret import Interpreter

LOOP = "__fgi_loop__"
INDEX = "__fgi_loop_index__"
ACC = "__fgi_loop_acc__"
PLACEHOLDERS = frozenset({INDEX, ACC})


def loop(
    bounds: Sequence[cst.BaseExpression], init: cst.BaseExpression, update: cst.BaseExpression
) -> cst.Call:
    """``range(*bounds)`` normalized to (start, stop, step)."""
    if len(bounds) == 1:
        bounds = (cst.Integer("0"), bounds[0], cst.Integer("1"))
    elif len(bounds) == 2:
        bounds = (bounds[0], bounds[1], cst.Integer("1"))
    return sym.call(LOOP, *bounds, init, update)


def run_loop(self: Interpreter, stmt: cst.For, frame: Frame) -> None:
    """Bind the one variable a loop over a range not known statically updates to its
    ``__fgi_loop__`` expression (``self`` is the interpreter running the body)."""
    assert isinstance(stmt.iter, cst.Call) and isinstance(stmt.target, cst.Name)
    bounds = [self.expr(self.eval(a.value, frame), a.value) for a in stmt.iter.args]
    assigned = assigned_names(stmt.body)
    carried = [n for n in assigned if n in frame.env and n != stmt.target.value]
    if len(carried) != 1 or self.runtime_loops:
        raise Refuse(
            codes.UnsupportedStatement,
            "a loop over a hyperparameter that updates several variables, or nests",
            stmt,
        )
    (name,) = carried
    init = self.expr(frame.env[name], stmt)
    body = branches.fork(frame)
    body.env[name] = cst.Name(ACC)
    body.env[stmt.target.value] = cst.Name(INDEX)
    self.runtime_loops += 1
    try:
        if self.exec_block(stmt.body.body, body) is not None:
            raise Refuse(codes.UnsupportedStatement, "a return inside a loop", stmt)
    finally:
        self.runtime_loops -= 1
    update = self.expr(body.env[name], stmt)
    branches.check_test(update)  # grad_output accumulated in a loop is not handled
    for local in assigned:
        if local in body.env:  # loop locals are not read after it
            frame.env[local] = cst.Name(branches.UNBOUND)
    frame.env[stmt.target.value] = cst.Name(branches.UNBOUND)
    frame.env[name] = loop(bounds, init, update)


def range_call(stmt: cst.For) -> bool:
    return (
        isinstance(stmt.iter, cst.Call)
        and dotted_name(stmt.iter.func) == "range"
        and 1 <= len(stmt.iter.args) <= 3
        and not any(a.keyword or a.star for a in stmt.iter.args)
        and isinstance(stmt.target, cst.Name)
    )


def assigned_names(body: cst.CSTNode) -> list[str]:
    """Names a loop body assigns, augments or updates in place, in order."""
    names: list[str] = []

    def add(target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name) and target.value not in names:
            names.append(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                add(element.value)

    def visit(node: cst.CSTNode) -> None:
        if isinstance(node, cst.AssignTarget):
            add(node.target)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
            add(node.target)
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            if _in_place(node.func.attr.value) and isinstance(node.func.value, cst.Name):
                add(node.func.value)

    sym.walk(body, visit)
    return names


def _in_place(method: str) -> bool:
    return method.endswith("_") and not method.startswith("_") and method[:-1] in ew.TENSOR_METHODS


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


def hoist(
    expressions: Sequence[cst.BaseExpression],
    fresh: Callable[[str], str],
    witness: cst.BaseExpression,
    indent: str,
) -> tuple[list[str], list[cst.BaseExpression]]:
    """Statements computing each run-time loop of ``expressions`` (innermost first), and the
    expressions with every loop replaced by the variable holding its result. ``witness`` is a
    tensor whose shape and dtype a number-valued start takes (``0.0`` becomes a tensor)."""
    lines: list[str] = []
    current = list(expressions)
    while True:
        found = _innermost(current)
        if found is None:
            return lines, current
        start, stop, step, init, update = (a.value for a in found.args)
        acc, index = fresh("_fgi_acc"), fresh("_fgi_i")
        body = sym.substitute(update, {ACC: cst.Name(acc), INDEX: cst.Name(index)})
        first = (
            sym.binop(sym.call("torch.zeros_like", witness), cst.Add(), init)
            if sym.literal_value(init) is not NotImplemented
            else init
        )
        lines += [
            f"{acc} = {sym.code(first)}",
            f"for {index} in range({sym.code(start)}, {sym.code(stop)}, {sym.code(step)}):",
            f"{indent}{acc} = {sym.code(body)}",
        ]
        key = sym.code(found)
        current = [_replace(e, key, acc) for e in current]


def _innermost(expressions: Sequence[cst.BaseExpression]) -> cst.Call | None:
    found: list[cst.Call] = []

    def visit(node: cst.CSTNode) -> None:
        if is_loop(node) and isinstance(node, cst.Call):
            found.append(node)

    for expression in expressions:
        sym.walk(expression, visit)
    inner = [c for c in found if not any(is_loop(a.value) for a in c.args)]
    return inner[-1] if inner else None


class _Replace(cst.CSTTransformer):
    def __init__(self, key: str, name: str) -> None:
        super().__init__()
        self.key, self.name = key, name

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if is_loop(updated) and sym.code(updated) == self.key:
            return cst.Name(self.name)
        return updated


def _replace(expression: cst.BaseExpression, key: str, name: str) -> cst.BaseExpression:
    result = expression.visit(_Replace(key, name))
    assert isinstance(result, cst.BaseExpression)
    return result
