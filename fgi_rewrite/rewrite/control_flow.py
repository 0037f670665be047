"""Statements for the control flow of extracted expressions: run-time branches on a
hyperparameter (``a if test else b`` in f or g) become an ``if``/``elif`` chain, a branch that
raises becomes ``raise``, and each run-time loop (``ir.LOOP``) is hoisted into a ``for``
statement before the code that uses it. TorchScript accepts both, since tests and bounds are
plain values (see ``analysis/branches.py`` and ``analysis/loops.py`` for how they are built).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import libcst as cst

from fgi_rewrite.core import ir
from fgi_rewrite.core import symbolic as sym

# ---- run-time branches -------------------------------------------------------------------------


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
        raised = next((r for e in tree.expressions for r in ir.raised_exceptions(e)), None)
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


# ---- run-time loops ----------------------------------------------------------------------------


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
        body = sym.substitute(update, {ir.ACC: cst.Name(acc), ir.INDEX: cst.Name(index)})
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
        if ir.is_loop(node) and isinstance(node, cst.Call):
            found.append(node)

    for expression in expressions:
        sym.walk(expression, visit)
    inner = [c for c in found if not any(ir.is_loop(a.value) for a in c.args)]
    return inner[-1] if inner else None


class _Replace(cst.CSTTransformer):
    def __init__(self, key: str, name: str) -> None:
        super().__init__()
        self.key, self.name = key, name

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if ir.is_loop(updated) and sym.code(updated) == self.key:
            return cst.Name(self.name)
        return updated


def _replace(expression: cst.BaseExpression, key: str, name: str) -> cst.BaseExpression:
    result = expression.visit(_Replace(key, name))
    assert isinstance(result, cst.BaseExpression)
    return result
