"""Run-time loops over a hyperparameter: ``for i in range(1, n):`` where ``n`` is not known
statically (a Fourier-series surrogate summing ``n - 1`` harmonics).

The interpreter (``Interpreter.run_loop``) runs the body once with the loop variable and the one
variable the loop updates as placeholders; the updated variable then stands for
``__fgi_loop__(start, stop, step, init, update)`` (``core/ir.py``), an expression the checks read
like any other. The emitter (``rewrite/control_flow.py``) hoists each such expression into
statements before the code that uses it::

    _fgi_acc = torch.zeros_like(x) + 0.0     # a tensor from the start: TorchScript keeps types
    for _fgi_i in range(1, n):
        _fgi_acc = _fgi_acc + torch.cos((2 * _fgi_i - 1.0) * w * x)
"""

from __future__ import annotations

import libcst as cst

from fgi_rewrite.analysis.expressions import in_place
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.project.source_module import dotted_name


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
            if in_place(node.func.attr.value) and isinstance(node.func.value, cst.Name):
                add(node.func.value)

    sym.walk(body, visit)
    return names
