"""Checks over extracted expressions: elementwise, random-free, linear in grad_output."""

from __future__ import annotations

import libcst as cst

from fgi_rewrite.analysis import elementwise as ew
from fgi_rewrite.analysis.expressions import call_name
from fgi_rewrite.analysis.values import Refuse
from fgi_rewrite.core import codes, ir
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.ir import GRAD_OUTPUT, OUTPUT, RAISE

# ---- checks over extracted expressions --------------------------------------------------------


def check_elementwise(
    node: cst.BaseExpression, *, allow_random: bool, what: str, allowed: frozenset[str]
) -> None:
    problems: list[tuple[type[codes.Code], str]] = []
    callees: set[int] = set()
    # Run-time state reads (``<M>.cfg.alpha``) are plain values, as hyperparameters are.
    node = ir.masked(_without_raises(node))

    def visit(n: cst.CSTNode) -> None:
        if isinstance(n, cst.Call):
            callees.add(id(n.func))
            full, method = call_name(n)
            if full is not None and full.split(".")[0] in ("torch", "math"):
                if full in ew.RANDOM_FUNCS:
                    if not allow_random:
                        problems.append((codes.RandomBackward, f"draws random numbers ({full})"))
                elif full not in ew.TORCH_FUNCS:
                    problems.append((codes.BackwardNotElementwise, f"uses {full}"))
                _reject_dim_keywords(n, problems)
            elif method is not None and _scalar_item(n):
                pass
            elif method is not None:
                if method in ew.RANDOM_METHODS:
                    if not allow_random:
                        problems.append((codes.RandomBackward, f"draws random numbers (.{method})"))
                elif method not in ew.TENSOR_METHODS:
                    problems.append((codes.BackwardNotElementwise, f"uses .{method}()"))
                _reject_dim_keywords(n, problems)
            elif full not in ew.BUILTINS and full != ir.LOOP:
                problems.append((codes.UnresolvedName, f"calls {full}"))
        elif isinstance(n, cst.Subscript):
            problems.append((codes.BackwardNotElementwise, f"indexes '{sym.code(n)}'"))
        elif (
            isinstance(n, cst.Attribute)
            and id(n) not in callees
            and not isinstance(n.value, (cst.Name, cst.Attribute))
        ):
            if n.attr.value not in ew.TENSOR_ATTRIBUTES:
                problems.append((codes.BackwardNotElementwise, f"uses .{n.attr.value}"))

    sym.walk(node, visit)
    ignored = {"True", "False", "None", "torch", "math", ir.LOOP, ir.REFERENCE} | ir.PLACEHOLDERS
    for name in sym.names_in(node) - ignored - ew.BUILTINS:
        if name not in allowed and name not in (OUTPUT, GRAD_OUTPUT):
            problems.append((codes.UnresolvedName, f"cannot resolve '{name}'"))
    if problems:
        code, message = problems[0]
        raise Refuse(code, f"{what} {message}")


def _scalar_item(node: cst.Call) -> bool:
    """``torch.tensor(h).item()``: the Python number of a tensor built from a hyperparameter
    (a scalar saved for backward as a tensor)."""
    func = node.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value == "item"
        and not node.args
        and isinstance(func.value, cst.Call)
        and sym.code(func.value.func) in ("torch.tensor", "torch.as_tensor")
    )


def _reject_dim_keywords(node: cst.Call, problems: list[tuple[type[codes.Code], str]]) -> None:
    for arg in node.args:
        if arg.keyword is not None and arg.keyword.value in ("dim", "axis", "keepdim"):
            problems.append((codes.BackwardNotElementwise, f"reduces over '{arg.keyword.value}'"))


# ---- linearity in grad_output ------------------------------------------------------------------

ONE: cst.BaseExpression | None = None  # the coefficient of grad_output itself


def coefficient(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """``c`` such that ``node == grad_output * c`` (``None`` standing for 1); raises Refuse."""
    if not sym.mentions(node, GRAD_OUTPUT):
        raise Refuse(codes.GradientNotLinear, "returns a gradient that ignores grad_output")
    if isinstance(node, cst.Name) and node.value == GRAD_OUTPUT:
        return ONE
    if isinstance(node, cst.BinaryOperation):
        in_left = sym.mentions(node.left, GRAD_OUTPUT)
        in_right = sym.mentions(node.right, GRAD_OUTPUT)
        op = node.operator
        if isinstance(op, cst.Multiply) and in_left != in_right:
            if in_left:
                return _times(coefficient(node.left), node.right)
            return _times(coefficient(node.right), node.left, left=True)
        if isinstance(op, cst.Divide) and in_left and not in_right:
            c = coefficient(node.left)
            numerator = c if c is not None else cst.Float("1.0")
            return sym.binop(numerator, cst.Divide(), node.right)
        if isinstance(op, (cst.Add, cst.Subtract)):
            if in_left and in_right:
                left, right = one(coefficient(node.left)), one(coefficient(node.right))
                return sym.binop(left, op, right)
            other = node.right if in_left else node.left
            if sym.is_zero(other):
                c = coefficient(node.left if in_left else node.right)
                if isinstance(op, cst.Subtract) and in_right:
                    return cst.UnaryOperation(cst.Minus(), sym.wrap_below(one(c), 8))
                return c
        if isinstance(op, cst.MatrixMultiply):
            raise Refuse(codes.BackwardNotElementwise, "matrix multiplication of grad_output")
        raise Refuse(codes.GradientNotLinear, f"'{sym.code(node)}' is not linear in grad_output")
    if isinstance(node, cst.UnaryOperation):
        if isinstance(node.operator, cst.Minus):
            c = coefficient(node.expression)
            return cst.UnaryOperation(cst.Minus(), sym.wrap_below(one(c), 8))
        if isinstance(node.operator, cst.Plus):
            return coefficient(node.expression)
    if isinstance(node, cst.Call):
        return _call_coefficient(node)
    if isinstance(node, cst.IfExp) and not sym.mentions(node.test, GRAD_OUTPUT):
        # A run-time branch on a hyperparameter (branches.py): each side is linear; a side that
        # raises stays as it is.
        body, orelse = (
            side if _is_raise(side) else one(coefficient(side)) for side in (node.body, node.orelse)
        )
        return sym.paren(node.with_changes(body=sym.atomic(body), orelse=sym.atomic(orelse)))
    raise Refuse(codes.GradientNotLinear, f"'{sym.code(node)}' is not linear in grad_output")


def _is_raise(node: cst.BaseExpression) -> bool:
    node = node.with_changes(lpar=[], rpar=[])
    return (
        isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == RAISE
    )


class _StripRaises(cst.CSTTransformer):
    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        return cst.Float("0.0") if _is_raise(updated) else updated


def _without_raises(node: cst.BaseExpression) -> cst.BaseExpression:
    """The raise markers of run-time branches are not computations: leave them out of checks."""
    result = node.visit(_StripRaises())
    assert isinstance(result, cst.BaseExpression)
    return result


def _call_coefficient(node: cst.Call) -> cst.BaseExpression | None:
    full, method = call_name(node)
    args = [a.value for a in node.args]
    with_grad = [sym.mentions(a, GRAD_OUTPUT) for a in args]
    if method is not None and isinstance(node.func, cst.Attribute):
        receiver = node.func.value
        if not sym.mentions(receiver, GRAD_OUTPUT):
            if method in ("mul", "multiply") and with_grad == [True]:
                return _times(coefficient(args[0]), receiver, left=True)
            raise Refuse(codes.GradientNotLinear, f"'{sym.code(node)}' is not linear")
        if any(with_grad):
            raise Refuse(codes.GradientNotLinear, f"'{sym.code(node)}' is not linear")
        inner = coefficient(receiver)
        if method in ("clone", "contiguous", "detach") and not args:
            return inner
        if method in ("mul", "multiply") and len(args) == 1:
            return _times(inner, args[0])
        if method in ("div", "divide", "true_divide") and len(args) == 1:
            return sym.binop(one(inner), cst.Divide(), args[0])
        if method == "neg" and not args:
            return cst.UnaryOperation(cst.Minus(), sym.wrap_below(one(inner), 8))
        if method == "masked_fill" and len(args) == 2 and sym.is_zero(args[1]):
            return _masked(inner, args[0])
        if method in ew.REDUCTIONS:
            raise Refuse(codes.BackwardNotElementwise, f"grad_output.{method}() mixes elements")
        raise Refuse(codes.GradientNotLinear, f"'{sym.code(node)}' is not linear in grad_output")
    if full in ("torch.mul", "torch.multiply") and len(args) == 2 and with_grad.count(True) == 1:
        if with_grad[0]:
            return _times(coefficient(args[0]), args[1])
        return _times(coefficient(args[1]), args[0], left=True)
    if full == "torch.where" and len(args) == 3 and not with_grad[0]:
        branches = []
        for arg, has in zip(args[1:], with_grad[1:], strict=True):
            if has:
                branches.append(one(coefficient(arg)))
            elif sym.is_zero(arg) or _zeros_like(arg):
                branches.append(cst.Float("0.0"))
            else:
                raise Refuse(codes.GradientNotLinear, "torch.where with a non-zero constant branch")
        return sym.call("torch.where", args[0], *branches)
    if full is not None and full.rsplit(".", 1)[-1] in ew.REDUCTIONS:
        raise Refuse(codes.BackwardNotElementwise, f"{full} mixes elements of grad_output")
    raise Refuse(codes.GradientNotLinear, f"'{sym.code(node)}' is not linear in grad_output")


def _zeros_like(node: cst.BaseExpression) -> bool:
    """``torch.zeros_like(t)`` (``t`` is ``grad_output``, read as the output: its shape and dtype
    only), ``t.new_zeros(...)`` or ``torch.full_like(t, 0)``: a zero branch of ``torch.where``,
    as in ``torch.where(mask, grad_output * g, torch.zeros_like(grad_output))``."""
    if not isinstance(node, cst.Call):
        return False
    full, method = call_name(node)
    if full == "torch.zeros_like" or method == "new_zeros":
        return True
    return full == "torch.full_like" and len(node.args) == 2 and sym.is_zero(node.args[1].value)


def one(c: cst.BaseExpression | None) -> cst.BaseExpression:
    return cst.Float("1.0") if c is None else c


def _times(
    c: cst.BaseExpression | None, factor: cst.BaseExpression, left: bool = False
) -> cst.BaseExpression:
    if c is None:
        return factor
    return sym.mul(factor, c) if left else sym.mul(c, factor)


def _masked(c: cst.BaseExpression | None, mask: cst.BaseExpression) -> cst.BaseExpression:
    if c is None:
        return sym.call("torch.where", mask, cst.Float("0.0"), cst.Float("1.0"))
    return sym.method(c, "masked_fill", mask, cst.Float("0.0"))
