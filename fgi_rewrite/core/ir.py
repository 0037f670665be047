"""The markers of the intermediate representation: names no user identifier uses, standing for
what an extracted expression cannot say in plain Python.

Analysis builds expressions with them (the forward value, ``grad_output``, a branch that raises, a
run-time loop); the emitter and the checks read them back. Kept in one place so that neither side
depends on the other to know them.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence

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


# ``__fgi_module__("pkg.surrogates")``: the module object whose globals the original reads at run
# time (the module that defines the Function, or a helper it calls). Analysis builds reads of
# run-time state on it (``<M>.ALPHA``, ``<M>.SLOPES[0]``, ``<M>.cfg.alpha``,
# ``<M>.SuperSpike.scale``); the rewrite renders it as a name that denotes that module where the
# code is inserted (``rewrite/references.py``). The argument is the module's qualifier.
MODULE = "__fgi_module__"
# What the checks see in place of a reference: a plain value read at run time (a hyperparameter).
REFERENCE = "__fgi_reference__"


def module(qualifier: str) -> cst.Call:
    return cst.Call(func=cst.Name(MODULE), args=[cst.Arg(cst.SimpleString(repr(qualifier)))])


def module_of(node: cst.CSTNode) -> str | None:
    """The qualifier of a module marker, else None."""
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value == MODULE
        and len(node.args) == 1
        and isinstance(node.args[0].value, cst.SimpleString)
    ):
        value = node.args[0].value.evaluated_value
        return value if isinstance(value, str) else None
    return None


def reference_root(node: cst.CSTNode) -> str | None:
    """The module qualifier a reference (``<M>.a.b[0]``, a chain of attributes and subscripts
    on a module marker) reads from, else None."""
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return module_of(node)


def is_reference(node: cst.CSTNode) -> bool:
    return reference_root(node) is not None and not module_of(node)


def references(expression: cst.CSTNode) -> list[cst.BaseExpression]:
    """The maximal references in ``expression``, in order, each once (by code)."""
    found: dict[str, cst.BaseExpression] = {}

    class Visitor(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, cst.BaseExpression) and is_reference(node):
                found.setdefault(sym.code(node.with_changes(lpar=[], rpar=[])), node)
                return False
            return True

    expression.visit(Visitor())
    return list(found.values())


def map_references(
    expression: cst.BaseExpression,
    replace: Callable[[cst.BaseExpression], cst.BaseExpression],
) -> cst.BaseExpression:
    """``expression`` with each maximal reference replaced by ``replace(reference)``."""

    class Transformer(cst.CSTTransformer):
        def on_visit(self, node: cst.CSTNode) -> bool:
            return not (isinstance(node, cst.BaseExpression) and is_reference(node))

        def on_leave(  # type: ignore[override]
            self, original: cst.CSTNode, updated: cst.CSTNode
        ) -> cst.CSTNode:
            if isinstance(original, cst.BaseExpression) and is_reference(original):
                replaced = replace(original)
                return replaced.with_changes(
                    lpar=[*original.lpar, *replaced.lpar], rpar=[*replaced.rpar, *original.rpar]
                )
            return updated

    result = expression.visit(Transformer())
    assert isinstance(result, cst.BaseExpression)
    return result


def masked(expression: cst.BaseExpression) -> cst.BaseExpression:
    """References as one opaque name each: what the checks treat as a hyperparameter."""
    return map_references(expression, lambda _: cst.Name(REFERENCE))


def display(expression: cst.BaseExpression) -> cst.BaseExpression:
    """References written with their module's dotted name (for reports)."""

    def dotted(reference: cst.BaseExpression) -> cst.BaseExpression:
        return _rebase(reference, lambda qualifier: sym.dotted(qualifier.split("@", 1)[0]))

    return map_references(expression, dotted)


def rebase(
    reference: cst.BaseExpression, base: Callable[[str], cst.BaseExpression | None]
) -> cst.BaseExpression:
    """``reference`` with its module marker replaced by ``base(qualifier)``; with None, the
    first attribute stands alone (a global read by its bare name)."""
    return _rebase(reference, base)


def _rebase(
    reference: cst.BaseExpression, base: Callable[[str], cst.BaseExpression | None]
) -> cst.BaseExpression:
    if isinstance(reference, cst.Attribute):
        qualifier = module_of(reference.value)
        if qualifier is not None:
            new = base(qualifier)
            if new is None:
                return reference.attr.with_changes(lpar=reference.lpar, rpar=reference.rpar)
            return reference.with_changes(value=new)
        return reference.with_changes(value=_rebase(reference.value, base))
    if isinstance(reference, cst.Subscript):
        return reference.with_changes(value=_rebase(reference.value, base))
    return reference


# ``__fgi_callable__("model", "surrogate_grad")`` / ``__fgi_callable__("model", lambda v: ...)``:
# a callable a call site passes as a hyperparameter (the surrogate shape the backward calls): a
# module-level function of a module, or a lambda written at the call site in that module. The
# analysis specialized to it inlines its body, as helpers are inlined.
CALLABLE = "__fgi_callable__"


def callable_marker(qualifier: str, target: str | cst.Lambda) -> cst.Call:
    second = cst.SimpleString(repr(target)) if isinstance(target, str) else target
    return sym.call(CALLABLE, cst.SimpleString(repr(qualifier)), second)


def callable_parts(node: cst.CSTNode) -> tuple[str, str | cst.Lambda] | None:
    """(module qualifier, function name or lambda) of a callable marker, else None."""
    if not (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value == CALLABLE
        and len(node.args) == 2
        and isinstance(node.args[0].value, cst.SimpleString)
    ):
        return None
    qualifier = node.args[0].value.evaluated_value
    target = node.args[1].value
    if isinstance(target, cst.SimpleString) and isinstance(target.evaluated_value, str):
        return (str(qualifier), target.evaluated_value)
    if isinstance(target, cst.Lambda):
        return (str(qualifier), target)
    return None
