"""Values the original reads at run time from module, class or container state: inlined when
the project provably never changes them, else read at run time by the emitted code.

A global of module M, an attribute of a class, an entry of a container a global holds is what
the original reads when its backward (or forward, or a helper) runs. The emitted code reads the
same thing, through M (``<M>.ALPHA``, ``<M>.SuperSpike.scale``, ``<M>.SLOPES[0]``,
``<M>.cfg.alpha``: module markers of ``core/ir.py``), unless the value is *static* (literals,
arithmetic on them, ``math`` functions and constants; tuples and dicts of such) and
``project/rebinding.py`` proves that nothing rebinds any global on the way to it or changes the
container. A default argument is different: Python evaluates it once, when the ``def`` runs, so
it is the value the global had then (its static initial value), never a later one.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from fgi_rewrite.analysis import elementwise as ew
from fgi_rewrite.analysis.values import Helper, Klass, ModuleValue, Refuse, Table, Value
from fgi_rewrite.core import codes, ir
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.project.entities import (
    ApplyRef,
    ClassRef,
    Entity,
    External,
    FunctionRef,
    ModuleRef,
    Unknown,
    ValueRef,
)
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.rebinding import classes_up_to
from fgi_rewrite.project.source_module import ModuleInfo, bound_names

Bindings = tuple[tuple[ModuleInfo, str], ...]
# Evaluates a module-level expression of a module (its static value, or a Refuse).
Evaluate = Callable[[cst.BaseExpression, ModuleInfo], Value]

MAX_STATIC_DEPTH = 20
_MUTABLE_LITERALS = (cst.List, cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp)


class RuntimeState:
    """Decides, per value read from module or class state, between its static value and a
    reference; remembers each reference's initial static value (for verification)."""

    def __init__(self, index: ProjectIndex, evaluate: Evaluate) -> None:
        self.index = index
        self.evaluate = evaluate
        self.initial: dict[str, Value] = {}  # reference code -> static value when first bound
        self.definition_time = False  # evaluating a default argument (see module docstring)
        self._evaluating: set[int] = set()  # ids of the expressions being evaluated

    # -- globals ---------------------------------------------------------------------------------
    def global_value(self, module: ModuleInfo, name: str, node: cst.CSTNode) -> Value:
        """What the original reads as ``module``'s global ``name``."""
        ref = cst.Attribute(value=ir.module(module.qualifier), attr=cst.Name(name))
        entity = self.index.resolve_name(module, name)
        bindings = binding_chain(self.index, module, name)
        return self.from_entity(entity, ref, bindings, node, module)

    def module_attribute(self, base: ModuleValue, attr: str, node: cst.CSTNode) -> Value:
        ref = cst.Attribute(value=base.ref, attr=cst.Name(attr))
        entity = self.index.resolve_name(base.info, attr)
        bindings = base.bindings + binding_chain(self.index, base.info, attr)
        return self.from_entity(entity, ref, bindings, node, base.info)

    def from_entity(
        self,
        entity: Entity,
        ref: cst.BaseExpression,
        bindings: Bindings,
        node: cst.CSTNode,
        module: ModuleInfo,
    ) -> Value:
        if isinstance(entity, External):
            return entity
        if isinstance(entity, ClassRef):
            return Klass(entity.info, ref)
        if isinstance(entity, ModuleRef):
            return ModuleValue(entity.module, ref, bindings)
        if isinstance(entity, FunctionRef):
            why = self.rebound(bindings)
            if why is not None and not self.definition_time:
                raise Refuse(
                    codes.CallableHyperparameter,
                    f"'{sym.code(node)}' may be rebound at run time ({why})",
                    node,
                )
            return Helper(entity.node, self.index.module(entity.path))
        if isinstance(entity, ApplyRef):
            raise Refuse(
                codes.UnsupportedStatement, f"calls another Function, {entity.info.name}", node
            )
        if isinstance(entity, ValueRef):
            static = self.static(entity.node, self.index.module(entity.path))
            why = self.rebound(bindings)
            if why is None and static is not None and _mutable(entity.node):
                home, name = bindings[-1]
                why = self.index.rebinding.container_mutated(home, name, entity.node)
            return self.choose(static, why, ref, node)
        if isinstance(entity, Unknown) and bound_at_module_level(module, ref):
            return self.choose(None, entity.reason, ref, node)
        reason = entity.reason if isinstance(entity, Unknown) else ""
        raise Refuse(codes.UnresolvedName, f"cannot resolve '{sym.code(node)}': {reason}", node)

    def passed_callable(self, marker: cst.Call, node: cst.CSTNode) -> Helper:
        """The function or lambda a call site passes as a hyperparameter (``ir.CALLABLE``)."""
        parts = ir.callable_parts(marker)
        assert parts is not None
        qualifier, target = parts
        module = self.index.module_by_qualifier(qualifier)
        if module is None:
            raise Refuse(codes.CallableHyperparameter, f"module {qualifier} not found", node)
        if isinstance(target, cst.Lambda):
            return Helper(target, module)
        value = self.global_value(module, target, node)
        if not isinstance(value, Helper):
            raise Refuse(
                codes.CallableHyperparameter, f"'{target}' is not a module-level function", node
            )
        return value

    # -- class attributes --------------------------------------------------------------------------
    def class_attribute(self, klass: Klass, attr: str, node: cst.CSTNode) -> Value:
        entity = self.index.attribute(ClassRef(klass.info), attr)
        ref = cst.Attribute(value=klass.ref, attr=cst.Name(attr)) if klass.ref else None
        if isinstance(entity, ClassRef):
            return Klass(entity.info, ref)
        if not isinstance(entity, ValueRef):
            reason = entity.reason if isinstance(entity, Unknown) else "not a value"
            raise Refuse(codes.UnresolvedName, f"cannot resolve '{sym.code(node)}': {reason}", node)
        static = self.static(entity.node, self.index.module(entity.path))
        chain = classes_up_to(self.index.mro(klass.info), attr)
        why = self.index.rebinding.attribute_rebound(chain, attr)
        if why is None and static is not None and _mutable(entity.node):
            why = self.index.rebinding.container_mutated(
                self.index.module(chain[-1].path), attr, entity.node
            )
        if ref is None and (static is None or why is not None):
            raise Refuse(
                codes.MutableHyperparameter,
                f"{klass.info.name}.{attr} may change at run time ({why or 'not a constant'}) "
                "and a class built inside a function cannot be read from the call site",
                node,
            )
        return self.choose(static, why, ref, node)

    # -- choosing ----------------------------------------------------------------------------------
    def choose(
        self,
        static: Value | None,
        why: str | None,
        ref: cst.BaseExpression | None,
        node: cst.CSTNode,
    ) -> Value:
        """The static value when nothing may change it, else the reference (at definition time,
        the static value regardless: a default is evaluated once)."""
        if static is not None and (why is None or self.definition_time):
            return static
        if self.definition_time or ref is None:
            raise Refuse(
                codes.UnresolvedName,
                f"'{sym.code(node)}' is evaluated when the function is defined, from a value "
                "that is not known statically",
                node,
            )
        if static is not None:
            self.initial.setdefault(sym.code(ref), static)
        return ref

    def subscript(self, base: cst.BaseExpression, index: Value, node: cst.CSTNode) -> Value:
        """``<M>.SLOPES[0]``: an entry of a container read at run time (a literal key)."""
        key = sym.literal_value(index) if isinstance(index, cst.BaseExpression) else NotImplemented
        if key is NotImplemented or not isinstance(index, cst.BaseExpression):
            raise Refuse(
                codes.BackwardNotElementwise,
                f"indexing '{sym.code(node)}' (run-time state with a key that is not a literal)",
                node,
            )
        ref = cst.Subscript(value=base, slice=[cst.SubscriptElement(cst.Index(index))])
        container = self.initial.get(sym.code(base))
        entry = None
        if isinstance(container, tuple) and isinstance(key, int) and -len(container) <= key:
            entry = container[key] if key < len(container) else None
        elif isinstance(container, Table):
            entry = container.get(key)
        if entry is not None:
            self.initial.setdefault(sym.code(ref), entry)
        return ref

    def static(self, node: cst.BaseExpression, module: ModuleInfo) -> Value | None:
        """The value of a module-level (or class-body) expression when it is static."""
        if id(node) in self._evaluating or len(self._evaluating) > MAX_STATIC_DEPTH:
            return None  # a cycle (``A = B + 1; B = A + 1``) or a very long chain
        self._evaluating.add(id(node))
        try:
            value = self.evaluate(node, module)
        except Refuse:
            return None
        finally:
            self._evaluating.discard(id(node))
        return value if is_static(value) else None

    def rebound(self, bindings: Bindings) -> str | None:
        for module, name in bindings:
            why = self.index.rebinding.global_rebound(module, name)
            if why is not None:
                return why
        return None

    def initial_values(self, expressions: list[cst.BaseExpression]) -> tuple[tuple[str, str], ...]:
        """(reference, its initial static value as code, '' when unknown) for each reference
        the expressions read."""
        found: list[tuple[str, str]] = []
        for expression in expressions:
            for reference in ir.references(expression):
                code = sym.code(reference.with_changes(lpar=[], rpar=[]))
                value = self.initial.get(code)
                shown = sym.code(value) if isinstance(value, cst.BaseExpression) else ""
                if code not in {c for c, _ in found}:
                    found.append((code, shown))
        return tuple(found)


def binding_chain(index: ProjectIndex, module: ModuleInfo, name: str) -> Bindings:
    """The globals read to reach ``module``'s ``name``: the name itself, then, through each
    ``from m import name`` (which copies the binding at import time), the one it copies."""
    chain = [(module, name)]
    seen = {(module.path, name)}
    current, current_name = module, name
    while (
        current_name not in current.assignments
        and current_name not in current.functions
        and current_name in current.imports
    ):
        dotted = current.imports[current_name]
        parent, _, attr = dotted.rpartition(".")
        if not parent or index.module_named(dotted, current.path) is not None:
            break  # ``import x as name``: a module, not a copied value
        target = index.module_named(parent, current.path)
        if target is None or (target.path, attr) in seen:
            break
        current, current_name = target, attr
        seen.add((current.path, current_name))
        chain.append((current, current_name))
    return tuple(chain)


def bound_at_module_level(module: ModuleInfo, ref: cst.BaseExpression) -> bool:
    """Whether ``ref``'s global (``<M>.name``) is bound at module level in some way the index
    does not resolve (tuple unpacking, a loop, a star import): then it is read at run time."""
    if not isinstance(ref, cst.Attribute) or ir.module_of(ref.value) is None:
        return False
    name = ref.attr.value
    return name in bound_names(module.tree) or name in module.assignments or _star(module)


def _star(module: ModuleInfo) -> bool:
    return any(
        isinstance(small, cst.ImportFrom) and isinstance(small.names, cst.ImportStar)
        for stmt in module.tree.body
        if isinstance(stmt, cst.SimpleStatementLine)
        for small in stmt.body
    )


def _mutable(node: cst.BaseExpression) -> bool:
    return isinstance(node, _MUTABLE_LITERALS)


def is_static(value: Value) -> bool:
    """Literals, arithmetic and comparisons of them, ``math`` functions and constants, and
    tuples and dicts of such: values no run-time state can change."""
    if isinstance(value, tuple):
        return all(is_static(v) for v in value)
    if isinstance(value, Table):
        return all(is_static(v) for _, v in value.items)
    if isinstance(value, External):
        return value.dotted in ew.MATH_CONSTANTS
    return isinstance(value, cst.BaseExpression) and _static_expression(value)


def _static_expression(node: cst.BaseExpression) -> bool:
    if sym.literal_value(node) is not NotImplemented:
        return True
    if isinstance(node, cst.Name):
        return node.value in ("True", "False", "None")
    if isinstance(node, cst.Attribute):
        return sym.code(node.with_changes(lpar=[], rpar=[])) in ew.MATH_CONSTANTS
    if isinstance(node, cst.BinaryOperation):
        return _static_expression(node.left) and _static_expression(node.right)
    if isinstance(node, cst.UnaryOperation):
        return _static_expression(node.expression)
    if isinstance(node, cst.Tuple):
        return all(_static_expression(e.value) for e in node.elements)
    if isinstance(node, cst.Call):
        name = sym.code(node.func)
        return (name.startswith("math.") or name in ("float", "int", "abs")) and all(
            not a.star and a.keyword is None and _static_expression(a.value) for a in node.args
        )
    return False
