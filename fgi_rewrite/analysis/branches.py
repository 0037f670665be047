"""Run-time branches on hyperparameters: an ``if`` whose test is not known statically.

When a call site passes a hyperparameter as a variable (``Fn.apply(x, alpha, kind)``), an ``if
kind == 0:`` in forward, backward or a helper cannot be folded. The interpreter then runs both
branches, each followed by the rest of its block, and merges what they compute into conditional
expressions ``a if test else b`` (``merge``); a branch that raises becomes a ``__fgi_raise__``
marker (``core/ir.py``). ``Interpreter.fork_if`` runs the branches; this module forks and joins
their frames. The emitter (``rewrite/control_flow.py``) turns the merged expressions back into an
``if``/``elif`` chain of statements, which TorchScript accepts since the test is on a plain value,
evaluated as the original would.
"""

from __future__ import annotations

import libcst as cst

from fgi_rewrite.analysis.values import Ctx, Frame, Refuse, Value
from fgi_rewrite.core import codes
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.ir import GRAD_OUTPUT, UNBOUND, is_raise

MAX_BRANCHES = 32  # forks per analysis: a chain of n ``if``s costs n, nested ones multiply


def fork(frame: Frame) -> Frame:
    """A copy of ``frame`` whose ctx objects are copies too, so that each branch records its
    own saved tensors and attributes."""
    env = {
        name: Ctx(dict(v.attrs), v.saved) if isinstance(v, Ctx) else v
        for name, v in frame.env.items()
    }
    return Frame(frame.module, env, frame.forward, frame.params)


def join(
    test: cst.BaseExpression,
    frame: Frame,
    then: tuple[Frame, Value | None],
    other: tuple[Frame, Value | None],
) -> Value | None:
    """Merge the two branches back into ``frame`` (its ctx objects updated in place) and return
    the merged result of the block (None when neither branch returned)."""
    (then_frame, a), (other_frame, b) = then, other
    if (a is None) != (b is None):
        raise Refuse(
            codes.UnsupportedStatement,
            "a run-time branch returns on one side only",
            test,
        )
    if is_raise(a):  # only the other branch goes on
        _adopt(frame, other_frame)
    elif is_raise(b):
        _adopt(frame, then_frame)
    else:
        names = set(then_frame.env) | set(other_frame.env)
        for name in names:
            original = frame.env.get(name)
            left = then_frame.env.get(name, cst.Name(UNBOUND))
            right = other_frame.env.get(name, cst.Name(UNBOUND))
            if isinstance(original, Ctx) and isinstance(left, Ctx) and isinstance(right, Ctx):
                merged_ctx = _merge_ctx(test, left, right)
                original.attrs, original.saved = merged_ctx.attrs, merged_ctx.saved
            else:
                frame.env[name] = merge(test, left, right)
    if a is None or b is None:
        return None
    return merge(test, a, b)


def _adopt(frame: Frame, branch: Frame) -> None:
    for name, value in branch.env.items():
        original = frame.env.get(name)
        if isinstance(original, Ctx) and isinstance(value, Ctx):
            original.attrs, original.saved = value.attrs, value.saved
        else:
            frame.env[name] = value


def _merge_ctx(test: cst.BaseExpression, a: Ctx, b: Ctx) -> Ctx:
    # An attribute set, or a tensor saved, on one side only cannot be read after the branch.
    attrs = {k: merge(test, a.attrs[k], b.attrs[k]) for k in a.attrs if k in b.attrs}
    saved = None
    if a.saved is not None and b.saved is not None:
        if len(a.saved) != len(b.saved):
            raise Refuse(codes.UnsupportedStatement, "branches save different tensors", test)
        saved = tuple(merge(test, x, y) for x, y in zip(a.saved, b.saved, strict=True))
    return Ctx(attrs, saved)


def merge(test: cst.BaseExpression, a: Value, b: Value) -> Value:
    """``a if test else b``, elementwise for tuples; equal values stay as they are."""
    if isinstance(a, cst.BaseExpression) and isinstance(b, cst.BaseExpression):
        if sym.code(a) == sym.code(b):
            return a
        test = simplify(test)
        return simplify(
            sym.paren(
                cst.IfExp(test=sym.wrap_below(test, 0), body=sym.atomic(a), orelse=sym.atomic(b))
            )
        )
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return tuple(merge(test, x, y) for x, y in zip(a, b, strict=True))
    if a == b:
        return a
    raise Refuse(codes.UnsupportedStatement, "run-time branches give values of different kinds")


def simplify(node: cst.BaseExpression) -> cst.BaseExpression:
    """Fold what run-time branches make of flags carried through tensors and back:
    ``torch.tensor(1 if c else 0, ...) > 0.5`` is ``c``, ``(True if c else False) is False`` is
    ``not c``; anything else is returned as it is."""
    bare = node.with_changes(lpar=[], rpar=[])
    if isinstance(bare, cst.IfExp) and _is_bool(bare.test):
        body, orelse = sym.literal_value(bare.body), sym.literal_value(bare.orelse)
        if body is True and orelse is False:
            return sym.paren(bare.test)
        if body is False and orelse is True:
            return _negate(bare.test)
    if not isinstance(bare, cst.Comparison) or len(bare.comparisons) != 1:
        return node
    target = bare.comparisons[0]
    right = sym.literal_value(target.comparator)
    left = _scalar_flag(bare.left)
    if isinstance(target.operator, (cst.Is, cst.IsNot)) and isinstance(right, bool):
        if _is_bool(bare.left):
            keep = right is isinstance(target.operator, cst.Is)
            return sym.paren(bare.left) if keep else _negate(bare.left)
        return node
    if right is NotImplemented or left is None or isinstance(right, str):
        return node
    if isinstance(left, cst.IfExp):
        sides = [sym.literal_value(left.body), sym.literal_value(left.orelse)]
        if all(isinstance(v, (int, float)) for v in sides):
            folded = [_compare(v, target.operator, right) for v in sides]
            if None not in folded:
                return simplify(
                    cst.IfExp(
                        test=left.test,
                        body=cst.Name(str(folded[0])),
                        orelse=cst.Name(str(folded[1])),
                    )
                )
    return node


def _scalar_flag(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """``e`` for ``torch.tensor(e, ...)`` (``.detach()`` or not) when ``e`` is a conditional
    choice between small integer literals, exact in every float dtype; also ``e`` itself."""
    node = node.with_changes(lpar=[], rpar=[])
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "detach"
        and not node.args
    ):
        node = node.func.value.with_changes(lpar=[], rpar=[])
    if isinstance(node, cst.Call) and sym.code(node.func) == "torch.tensor" and node.args:
        node = node.args[0].value.with_changes(lpar=[], rpar=[])
    if isinstance(node, cst.IfExp):
        sides = [sym.literal_value(node.body), sym.literal_value(node.orelse)]
        if all(isinstance(v, int) and abs(v) < 2**24 for v in sides):
            return node
    return None


def _compare(value: object, operator: cst.BaseCompOp, right: object) -> bool | None:
    if not isinstance(value, (int, float)) or not isinstance(right, (int, float)):
        return None
    table = {
        cst.GreaterThan: value > right,
        cst.GreaterThanEqual: value >= right,
        cst.LessThan: value < right,
        cst.LessThanEqual: value <= right,
        cst.Equal: value == right,
        cst.NotEqual: value != right,
    }
    return table.get(type(operator))


def _is_bool(node: cst.BaseExpression) -> bool:
    node = node.with_changes(lpar=[], rpar=[])
    if isinstance(node, cst.Comparison):
        return not any(
            isinstance(c.operator, (cst.Is, cst.IsNot)) and _is_tensorish(c.comparator)
            for c in node.comparisons
        )
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
        return True
    return isinstance(node, cst.Call) and sym.code(node.func) == "isinstance"


def _is_tensorish(node: cst.BaseExpression) -> bool:
    return sym.literal_value(node) is NotImplemented


def _negate(node: cst.BaseExpression) -> cst.BaseExpression:
    return sym.paren(cst.UnaryOperation(cst.Not(), sym.wrap_below(node, 0)))


def check_test(test: cst.BaseExpression) -> None:
    if sym.mentions(test, GRAD_OUTPUT):
        raise Refuse(codes.GradientNotLinear, "branches on grad_output", test)
