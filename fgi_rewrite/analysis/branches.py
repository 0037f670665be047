"""Run-time branches on hyperparameters: an ``if`` whose test is not known statically.

When a call site passes a hyperparameter as a variable (``Fn.apply(x, alpha, kind)``), an ``if
kind == 0:`` in forward, backward or a helper cannot be folded. The interpreter then runs both
branches, each followed by the rest of its block, and merges what they compute into conditional
expressions ``a if test else b`` (``merge``); a branch that raises becomes a ``__fgi_raise__``
marker. The emitter turns these back into an ``if``/``elif`` chain of statements (``split``),
which TorchScript accepts since the test is on a plain value, evaluated as the original would.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from fgi_rewrite.analysis.values import Ctx, Frame, Refuse, Value
from fgi_rewrite.core import codes
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.core.model import GRAD_OUTPUT, RAISE

if TYPE_CHECKING:
    from fgi_rewrite.analysis.interpret import Interpreter

MAX_BRANCHES = 32  # forks per analysis: a chain of n ``if``s costs n, nested ones multiply
UNBOUND = "__fgi_unbound__"  # a name bound in one branch only (an error if used after the if)


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


def fork_if(
    self: Interpreter,
    stmt: cst.If,
    test: cst.BaseExpression,
    rest: Sequence[cst.CSTNode],
    frame: Frame,
) -> Value | None:
    """Run each branch of ``stmt`` followed by the rest of the block, and merge them
    (``self`` is the interpreter)."""
    self.forks += 1
    if self.forks > MAX_BRANCHES:
        raise Refuse(codes.UnsupportedStatement, "too many run-time branches", stmt)
    check_test(test)
    other: list[cst.CSTNode] = []
    if isinstance(stmt.orelse, cst.If):
        other = [stmt.orelse]
    elif isinstance(stmt.orelse, cst.Else):
        other = list(stmt.orelse.body.body)
    then_frame, other_frame = fork(frame), fork(frame)
    a = self.exec_block([*stmt.body.body, *rest], then_frame)
    b = self.exec_block([*other, *rest], other_frame)
    return join(test, frame, (then_frame, a), (other_frame, b))


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


# ---- emission ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    expressions: tuple[cst.BaseExpression, ...]


@dataclass(frozen=True)
class Branch:
    test: cst.BaseExpression
    then: Leaf | Branch
    other: Leaf | Branch


def split(
    expressions: Sequence[cst.BaseExpression], known: tuple[tuple[str, bool], ...] = ()
) -> Leaf | Branch:
    """Case-split expressions on their conditional expressions, first test first. A test that is
    a literal once a call site's values are substituted, or that the enclosing branches decide
    (``kind == 2`` is false where ``kind == 1`` holds), picks its branch."""
    test = _first_test(expressions)
    if test is None:
        return Leaf(tuple(expressions))
    then = [_choose(e, test, True) for e in expressions]
    other = [_choose(e, test, False) for e in expressions]
    value = _decided(test, known)
    if value is not None:
        return split(then if value else other, known)
    key = _bare(test)
    return Branch(test, split(then, (*known, (key, True))), split(other, (*known, (key, False))))


def _bare(node: cst.BaseExpression) -> str:
    return sym.code(node.with_changes(lpar=[], rpar=[]))


def _decided(test: cst.BaseExpression, known: tuple[tuple[str, bool], ...]) -> bool | None:
    value = sym.literal_value(test)
    if isinstance(value, bool):
        return value
    facts = dict(known)
    if _bare(test) in facts:
        return facts[_bare(test)]
    bare = test.with_changes(lpar=[], rpar=[])
    if isinstance(bare, cst.UnaryOperation) and isinstance(bare.operator, cst.Not):
        inner = _decided(bare.expression, known)
        return None if inner is None else not inner
    if (
        isinstance(bare, cst.Call)
        and sym.code(bare.func) == "isinstance"
        and bare.args
        and sym.literal_value(bare.args[0].value) is not NotImplemented
    ):
        return False  # a literal is never a tensor (nor any class a test names)
    equality = _equality(test)
    if equality is None:
        return None
    for fact, holds in known:
        other = _equality(cst.parse_expression(fact))
        if holds and other is not None and other[0] == equality[0]:
            return other[1] == equality[1]  # one name equals one literal at a time
    return None


def _equality(test: cst.BaseExpression) -> tuple[str, object] | None:
    """``(name, literal)`` for a test ``name == literal``."""
    test = test.with_changes(lpar=[], rpar=[])
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return None
    target = test.comparisons[0]
    if not isinstance(target.operator, cst.Equal) or not isinstance(test.left, cst.Name):
        return None
    value = sym.literal_value(target.comparator)
    if value is NotImplemented or isinstance(value, float):
        return None  # 1 == 1.0: only ints, strings and bools are told apart by value
    return test.left.value, value


def render(
    tree: Leaf | Branch,
    leaf: Callable[[tuple[cst.BaseExpression, ...]], list[str]],
    indent: str,
) -> list[str]:
    """Statements for ``tree``: an if/elif/else chain whose leaves are ``leaf``'s lines, or
    ``raise E`` where an expression of the leaf raises."""
    if isinstance(tree, Leaf):
        raised = next((r for e in tree.expressions for r in _raises(e)), None)
        if raised is not None:
            return [f"raise {sym.code(raised)}"]
        return leaf(tree.expressions)
    lines = [f"if {_bare(tree.test)}:"]
    lines += [indent + line for line in render(tree.then, leaf, indent)]
    other = render(tree.other, leaf, indent)
    if isinstance(tree.other, Branch) and other[0].startswith("if "):
        lines.append("el" + other[0])
        lines += other[1:]
    else:
        lines.append("else:")
        lines += [indent + line for line in other]
    return lines


def has_branches(expressions: Sequence[cst.BaseExpression]) -> bool:
    return _first_test(expressions) is not None or any(_raises(e) for e in expressions)


def _first_test(expressions: Sequence[cst.BaseExpression]) -> cst.BaseExpression | None:
    found: list[cst.BaseExpression] = []

    def visit(node: cst.CSTNode) -> None:
        if isinstance(node, cst.IfExp) and not found:
            found.append(node.test)

    for expression in expressions:
        sym.walk(expression, visit)
        if found:
            return found[0]
    return None


def _raises(expression: cst.BaseExpression) -> list[cst.BaseExpression]:
    found: list[cst.BaseExpression] = []

    def visit(node: cst.CSTNode) -> None:
        if is_raise(node) and isinstance(node, cst.Call):
            found.append(node.args[0].value)

    sym.walk(expression, visit)
    return found


class _Choose(cst.CSTTransformer):
    def __init__(self, test: str, branch: bool) -> None:
        super().__init__()
        self.test, self.branch = test, branch

    def leave_IfExp(self, original: cst.IfExp, updated: cst.IfExp) -> cst.BaseExpression:
        if _bare(original.test) != self.test:
            return updated
        chosen = (updated.body if self.branch else updated.orelse).with_changes(lpar=[], rpar=[])
        return sym.atomic(chosen)


def _choose(
    expression: cst.BaseExpression, test: cst.BaseExpression, branch: bool
) -> cst.BaseExpression:
    result = expression.visit(_Choose(_bare(test), branch))
    assert isinstance(result, cst.BaseExpression)
    return result
