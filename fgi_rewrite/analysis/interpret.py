"""Symbolic interpreter for the bodies of forward, setup_context, backward and helpers.

Every local, ``ctx`` attribute, saved tensor and helper call is replaced by the expression it
stands for; what cannot be read as one expression raises ``Refuse`` with a code.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from fgi_rewrite.analysis import branches, expressions, liveness, loops
from fgi_rewrite.analysis import elementwise as ew
from fgi_rewrite.analysis.state import RuntimeState
from fgi_rewrite.analysis.values import (
    Ctx,
    Frame,
    Helper,
    Klass,
    ModuleValue,
    NeedsInputGrad,
    Refuse,
    Table,
    Value,
)
from fgi_rewrite.core import codes, ir
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.project.entities import External
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import ClassInfo, ModuleInfo, dotted_name

__all__ = ["Ctx", "Frame", "Interpreter", "Refuse", "Value"]

MAX_INLINE_DEPTH = 12
MAX_UNROLL = 256


_TRUE = cst.Name("True")
_NONE = cst.Name("None")


class Interpreter:
    def __init__(
        self,
        index: ProjectIndex,
        owner: ClassInfo,
        closure: tuple[tuple[str, str], ...] = (),
        runtime: bool = False,
    ) -> None:
        self.index = index
        self.owner = owner
        self.closure = {name: cst.parse_expression(code) for name, code in closure}
        self.depth = 0
        self.mask: str | None = None  # the mask of the masked assignment being evaluated
        # Run-time branches (branches.py): an ``if`` on a value not known statically is kept.
        self.runtime = runtime
        self.forks = 0
        self.runtime_loops = 0
        self.dead: set[int] = set()  # ids of statements nothing reads (liveness.py)
        self.inputs: frozenset[str] = frozenset()  # the forward's inputs (set by the analysis)
        # Module, class and container state: inlined when provably fixed, else read at run time.
        self.state = RuntimeState(
            index, lambda node, module: self.eval(node, Frame(module, {}, forward=False))
        )

    # -- statements ----------------------------------------------------------------------------
    def run(self, func: cst.FunctionDef, frame: Frame) -> Value:
        self.depth += 1
        if self.depth > MAX_INLINE_DEPTH:
            raise Refuse(codes.UnsupportedStatement, "helpers nest too deeply (recursion?)", func)
        try:
            body = func.body.body if isinstance(func.body, cst.IndentedBlock) else func.body.body
            params = func.params
            names = frozenset(
                p.name.value
                for p in (*params.posonly_params, *params.params, *params.kwonly_params)
            )
            self.dead |= liveness.dead_statements(body, names)
            result = self.exec_block(body, frame)
        finally:
            self.depth -= 1
        if result is None:
            raise Refuse(codes.UnsupportedStatement, f"'{func.name.value}' does not return", func)
        return result

    def exec_block(self, body: Sequence[cst.CSTNode], frame: Frame) -> Value | None:
        body = [s for s in body if id(s) not in self.dead]
        for i, stmt in enumerate(body):
            if self.runtime and isinstance(stmt, cst.If):
                test = self.static_test(stmt, frame)
                if isinstance(test, cst.BaseExpression):
                    return self.fork_if(stmt, test, body[i + 1 :], frame)
            result = self.exec_statement(stmt, frame)
            if result is not None:
                return result
        return None

    def exec_statement(self, stmt: cst.CSTNode, frame: Frame) -> Value | None:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                result = self.exec_small(small, frame)
                if result is not None:
                    return result
            return None
        if isinstance(stmt, cst.If):
            return self.exec_if(stmt, frame)
        if isinstance(stmt, cst.For):
            return self.exec_for(stmt, frame)
        if isinstance(stmt, cst.With):
            names = [
                dotted_name(item.item.func) if isinstance(item.item, cst.Call) else None
                for item in stmt.items
            ]
            if all(n is not None and n.endswith(("no_grad", "enable_grad")) for n in names):
                return self.exec_block(stmt.body.body, frame)
        raise Refuse(
            codes.UnsupportedStatement, f"unsupported statement '{type(stmt).__name__}'", stmt
        )

    def static_test(self, stmt: cst.If, frame: Frame) -> bool | cst.BaseExpression:
        """The test's truth value when it is known statically, else the test expression."""
        test = self.eval(stmt.test, frame)
        if isinstance(test, NeedsInputGrad):
            return True
        value = sym.literal_value(test) if isinstance(test, cst.BaseExpression) else NotImplemented
        if value is NotImplemented and _only_saves(stmt) and _mentions_requires_grad(stmt.test):
            return True  # ``if x.requires_grad: ctx.save_for_backward(x)``: backward needs it
        if value is NotImplemented:
            return self.expr(test, stmt.test)
        return bool(value)

    def exec_if(self, stmt: cst.If, frame: Frame) -> Value | None:
        value = self.static_test(stmt, frame)
        if isinstance(value, cst.BaseExpression):
            raise Refuse(
                codes.UnsupportedStatement,
                "a condition that is not known statically",
                stmt.test,
                specializable=True,
            )
        if value:
            return self.exec_block(stmt.body.body, frame)
        if isinstance(stmt.orelse, cst.If):
            return self.exec_block([stmt.orelse], frame)
        if isinstance(stmt.orelse, cst.Else):
            return self.exec_block(stmt.orelse.body.body, frame)
        return None

    def exec_for(self, stmt: cst.For, frame: Frame) -> Value | None:
        bounds = None
        if isinstance(stmt.iter, cst.Call) and dotted_name(stmt.iter.func) == "range":
            args = [self.eval(a.value, frame) for a in stmt.iter.args]
            values = [
                sym.literal_value(a) if isinstance(a, cst.BaseExpression) else None for a in args
            ]
            ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
            if len(ints) == len(values) and 1 <= len(ints) <= 3:
                bounds = range(*ints)
        if bounds is None and self.runtime and loops.range_call(stmt) and stmt.orelse is None:
            self.run_loop(stmt, frame)
            return None
        if bounds is None or len(bounds) > MAX_UNROLL or not isinstance(stmt.target, cst.Name):
            raise Refuse(
                codes.UnsupportedStatement,
                "a loop whose range is not a constant",
                stmt,
                specializable=True,
            )
        if stmt.orelse is not None:
            raise Refuse(codes.UnsupportedStatement, "for/else", stmt)
        for i in bounds:
            frame.env[stmt.target.value] = (
                cst.Integer(str(i))
                if i >= 0
                else sym.paren(cst.UnaryOperation(cst.Minus(), cst.Integer(str(-i))))
            )
            result = self.exec_block(stmt.body.body, frame)
            if result is not None:
                return result
        return None

    def fork_if(
        self,
        stmt: cst.If,
        test: cst.BaseExpression,
        rest: Sequence[cst.CSTNode],
        frame: Frame,
    ) -> Value | None:
        """Run each branch of ``stmt`` followed by the rest of the block, and merge them
        (run-time branches, ``branches.py``)."""
        self.forks += 1
        if self.forks > branches.MAX_BRANCHES:
            raise Refuse(codes.UnsupportedStatement, "too many run-time branches", stmt)
        branches.check_test(test)
        other: list[cst.CSTNode] = []
        if isinstance(stmt.orelse, cst.If):
            other = [stmt.orelse]
        elif isinstance(stmt.orelse, cst.Else):
            other = list(stmt.orelse.body.body)
        then_frame, other_frame = branches.fork(frame), branches.fork(frame)
        a = self.exec_block([*stmt.body.body, *rest], then_frame)
        b = self.exec_block([*other, *rest], other_frame)
        return branches.join(test, frame, (then_frame, a), (other_frame, b))

    def run_loop(self, stmt: cst.For, frame: Frame) -> None:
        """Bind the one variable a loop over a range not known statically updates to its
        ``__fgi_loop__`` expression (run-time loops, ``loops.py``)."""
        assert isinstance(stmt.iter, cst.Call) and isinstance(stmt.target, cst.Name)
        bounds = [self.expr(self.eval(a.value, frame), a.value) for a in stmt.iter.args]
        assigned = loops.assigned_names(stmt.body)
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
        body.env[name] = cst.Name(ir.ACC)
        body.env[stmt.target.value] = cst.Name(ir.INDEX)
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
                frame.env[local] = cst.Name(ir.UNBOUND)
        frame.env[stmt.target.value] = cst.Name(ir.UNBOUND)
        frame.env[name] = ir.loop(bounds, init, update)

    def exec_small(self, small: cst.BaseSmallStatement, frame: Frame) -> Value | None:
        if isinstance(small, cst.Return):
            return self.eval(small.value, frame) if small.value is not None else _NONE
        if isinstance(small, cst.Assign):
            value = self.eval_under_mask(small.value, small.targets[0].target, frame)
            for target in small.targets:
                self.bind(target.target, value, frame)
            return None
        if isinstance(small, cst.AnnAssign):
            if small.value is not None:
                self.bind(small.target, self.eval(small.value, frame), frame)
            return None
        if isinstance(small, cst.AugAssign):
            op = _AUG_TO_BINARY.get(type(small.operator))
            if op is None:
                raise Refuse(codes.UnsupportedStatement, "unsupported augmented assignment", small)
            value = self.expr(self.eval_under_mask(small.value, small.target, frame), small.value)
            if isinstance(small.target, cst.Name):
                current = self.expr(self.eval(small.target, frame), small.target)
                self.check_mutable(small.target.value, frame, small)
                frame.env[small.target.value] = sym.binop(current, op(), value)
                return None
            if isinstance(small.target, cst.Subscript):
                base, mask = self.masked_target(small.target, frame)
                current = self.expr(frame.env[base], small.target)
                updated = sym.binop(current, op(), value)
                frame.env[base] = sym.call("torch.where", mask, updated, current)
                return None
            raise Refuse(codes.SideEffectForward, "assignment to an attribute", small)
        if isinstance(small, cst.Expr):
            self.exec_expression_statement(small.value, frame)
            return None
        if isinstance(small, (cst.Pass, cst.Assert)):
            return None
        if isinstance(small, cst.Raise) and self.runtime:
            return ir.raise_marker(small.exc)
        if isinstance(small, (cst.Global, cst.Nonlocal, cst.Del)):
            raise Refuse(
                codes.SideEffectForward, f"'{type(small).__name__.lower()}' statement", small
            )
        raise Refuse(codes.UnsupportedStatement, f"unsupported '{type(small).__name__}'", small)

    def exec_expression_statement(self, node: cst.BaseExpression, frame: Frame) -> None:
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.Ellipsis)):
            return None
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            receiver = self.eval(node.func.value, frame)
            attr = node.func.attr.value
            if isinstance(receiver, Ctx):
                if attr in ("save_for_backward", "save_for_forward"):
                    if any(a.star for a in node.args):
                        raise Refuse(codes.UnsupportedStatement, "save_for_backward(*args)", node)
                    receiver.saved = tuple(self.eval(a.value, frame) for a in node.args)
                    return None
                if attr in ("mark_non_differentiable", "set_materialize_grads"):
                    return None
                raise Refuse(codes.SideEffectForward, f"ctx.{attr}(...)", node)
            if (
                isinstance(node.func.value, cst.Name)
                and attr.endswith("_")
                and attr[:-1] in ew.TENSOR_METHODS
            ):
                name = node.func.value.value
                self.check_mutable(name, frame, node)
                current = self.expr(receiver, node.func.value)
                # Keywords are kept: ``t.clamp_(max=3.0)`` is ``t.clamp(max=3.0)``, not
                # ``t.clamp(3.0)`` (a lower bound).
                args = [
                    arg.with_changes(value=self.expr(self.eval(arg.value, frame), arg.value))
                    for arg in node.args
                ]
                call = sym.method(current, attr[:-1])
                frame.env[name] = call.with_changes(args=args)
                return None
        raise Refuse(codes.SideEffectForward, "a statement whose result is dropped", node)

    def check_mutable(self, name: str, frame: Frame, node: cst.CSTNode) -> None:
        if name not in frame.env:
            raise Refuse(codes.SideEffectForward, f"in-place update of non-local '{name}'", node)
        if frame.forward and name in frame.params:
            raise Refuse(codes.SideEffectForward, f"in-place update of input '{name}'", node)

    def masked_target(self, target: cst.Subscript, frame: Frame) -> tuple[str, cst.BaseExpression]:
        if not isinstance(target.value, cst.Name) or len(target.slice) != 1:
            raise Refuse(codes.BackwardNotElementwise, "indexed assignment", target)
        element = target.slice[0].slice
        if not isinstance(element, cst.Index):
            raise Refuse(codes.BackwardNotElementwise, "slice assignment", target)
        self.check_mutable(target.value.value, frame, target)
        mask = self.expr(self.eval(element.value, frame), element.value)
        if not expressions.is_boolean(mask):
            raise Refuse(codes.BackwardNotElementwise, "indexed assignment (not a mask)", target)
        return target.value.value, mask

    def eval_under_mask(
        self, value: cst.BaseExpression, target: cst.BaseExpression, frame: Frame
    ) -> Value:
        """``g[m] = -g[m]``: on the right, ``t[m]`` (same mask) is ``t`` itself, since only the
        masked elements are written back."""
        if not isinstance(target, cst.Subscript):
            return self.eval(value, frame)
        _, mask = self.masked_target(target, frame)
        outer, self.mask = self.mask, sym.code(mask)
        try:
            return self.eval(value, frame)
        finally:
            self.mask = outer

    def bind(self, target: cst.BaseExpression, value: Value, frame: Frame) -> None:
        if isinstance(target, cst.Name):
            frame.env[target.value] = value
            return
        if isinstance(target, (cst.Tuple, cst.List)):
            if isinstance(value, Ctx):
                raise Refuse(codes.UnsupportedStatement, "unpacking ctx", target)
            if not isinstance(value, tuple) or len(value) != len(target.elements):
                raise Refuse(codes.UnsupportedStatement, "unpacking of unknown length", target)
            for element, item in zip(target.elements, value, strict=True):
                if isinstance(element, cst.StarredElement):
                    raise Refuse(codes.UnsupportedStatement, "starred unpacking", target)
                self.bind(element.value, item, frame)
            return
        if isinstance(target, cst.Attribute):
            receiver = self.eval(target.value, frame)
            if isinstance(receiver, Ctx):
                receiver.attrs[target.attr.value] = value
                return
            raise Refuse(codes.SideEffectForward, f"assignment to '{sym.code(target)}'", target)
        if isinstance(target, cst.Subscript):
            base, mask = self.masked_target(target, frame)
            current = self.expr(frame.env[base], target)
            new = self.expr(value, target)
            if sym.literal_value(new) is not NotImplemented:
                frame.env[base] = sym.method(current, "masked_fill", mask, new)
            else:
                frame.env[base] = sym.call("torch.where", mask, new, current)
            return
        raise Refuse(codes.UnsupportedStatement, "unsupported assignment target", target)

    # -- expressions ---------------------------------------------------------------------------
    def expr(self, value: Value, node: cst.CSTNode) -> cst.BaseExpression:
        """Coerce a value to an expression (modules and constants become their dotted name)."""
        if isinstance(value, cst.BaseExpression):
            return value
        if isinstance(value, External):
            return sym.dotted(value.dotted)
        if isinstance(value, tuple):
            return cst.Tuple([cst.Element(self.expr(v, node)) for v in value])
        if isinstance(value, Helper):
            raise Refuse(codes.CallableHyperparameter, "a function used as a value", node)
        raise Refuse(codes.UnsupportedStatement, f"'{sym.code(node)}' used as a value", node)

    def eval(self, node: cst.BaseExpression, frame: Frame) -> Value:
        if isinstance(node, cst.Name):
            return self.eval_name(node, frame)
        if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)):
            return node
        if isinstance(node, cst.Attribute):
            return self.eval_attribute(node, frame)
        if isinstance(node, cst.Subscript):
            return self.eval_subscript(node, frame)
        if isinstance(node, cst.Call):
            return self.eval_call(node, frame)
        if isinstance(node, (cst.Tuple, cst.List)):
            if any(isinstance(e, cst.StarredElement) for e in node.elements):
                raise Refuse(codes.UnsupportedStatement, "starred element", node)
            return tuple(self.eval(e.value, frame) for e in node.elements)
        if isinstance(node, cst.Dict):
            return self.eval_dict(node, frame)
        if isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, cst.MatrixMultiply):
                raise Refuse(codes.BackwardNotElementwise, "matrix multiplication", node)
            left = self.expr(self.eval(node.left, frame), node.left)
            right = self.expr(self.eval(node.right, frame), node.right)
            return expressions.fold(
                sym.binop(left, node.operator, right).with_changes(lpar=node.lpar, rpar=node.rpar)
            )
        if isinstance(node, cst.UnaryOperation):
            operand = self.expr(self.eval(node.expression, frame), node.expression)
            return expressions.fold(node.with_changes(expression=sym.wrap_below(operand, 8)))
        if isinstance(node, cst.Comparison):
            left = self.expr(self.eval(node.left, frame), node.left)
            targets = [
                t.with_changes(
                    comparator=sym.wrap_below(
                        self.expr(self.eval(t.comparator, frame), t.comparator), 2
                    )
                )
                for t in node.comparisons
            ]
            return expressions.fold(
                node.with_changes(left=sym.wrap_below(left, 2), comparisons=targets)
            )
        if isinstance(node, cst.BooleanOperation):
            left_v = self.eval(node.left, frame)
            right_v = self.eval(node.right, frame)
            if isinstance(left_v, NeedsInputGrad) or isinstance(right_v, NeedsInputGrad):
                raise Refuse(codes.UnsupportedStatement, "needs_input_grad in an expression", node)
            left = sym.wrap_below(self.expr(left_v, node.left), 0)
            right = sym.wrap_below(self.expr(right_v, node.right), 0)
            return expressions.fold(node.with_changes(left=left, right=right))
        if isinstance(node, cst.IfExp):
            test = self.expr(self.eval(node.test, frame), node.test)
            value = sym.literal_value(test)
            if value is NotImplemented and self.runtime:
                branches.check_test(test)
                body, orelse = self.eval(node.body, frame), self.eval(node.orelse, frame)
                return branches.merge(test, body, orelse)
            if value is NotImplemented:
                raise Refuse(
                    codes.UnsupportedStatement, "a conditional expression", node, specializable=True
                )
            return self.eval(node.body if value else node.orelse, frame)
        raise Refuse(codes.UnsupportedStatement, f"unsupported '{type(node).__name__}'", node)

    def eval_name(self, node: cst.Name, frame: Frame) -> Value:
        if node.value in frame.env:
            return frame.env[node.value]
        if node.value in self.closure and frame.module.path == self.owner.path:
            return self.closure[node.value]
        if node.value in ("True", "False", "None") or node.value in ew.BUILTINS | {"range"}:
            return node
        module = frame.module
        if module.path == self.owner.path:
            for info in module.classes:  # names of enclosing/factory classes (e.g. Fn.alpha)
                if info.name == node.value and (info.in_function or info.owner is not None):
                    return Klass(info)
        try:
            return self.state.global_value(module, node.value, node)
        except Refuse as refusal:
            if refusal.code is not codes.UnresolvedName or refusal.specializable:
                raise
            # A class built in a factory may find the name among the factory call's arguments.
            raise Refuse(
                refusal.code,
                refusal.message,
                refusal.node,
                specializable=self.owner.in_function and not self.closure,
            ) from None

    def eval_attribute(self, node: cst.Attribute, frame: Frame) -> Value:
        base = self.eval(node.value, frame)
        attr = node.attr.value
        if isinstance(base, Ctx):
            if attr in ("saved_tensors", "saved_variables"):
                if base.saved is None:
                    raise Refuse(codes.UnresolvedName, "saved_tensors read but nothing saved", node)
                return base.saved
            if attr == "needs_input_grad":
                return NeedsInputGrad()
            if attr not in base.attrs:
                raise Refuse(codes.UnresolvedName, f"ctx.{attr} is never set in forward", node)
            return base.attrs[attr]
        if isinstance(base, External):
            dotted = f"{base.dotted}.{attr}"
            return External(_NUMPY_CONSTANTS.get(dotted, dotted))
        if isinstance(base, Klass):
            return self.state.class_attribute(base, attr, node)
        if isinstance(base, ModuleValue):
            return self.state.module_attribute(base, attr, node)
        if isinstance(base, cst.BaseExpression):
            return cst.Attribute(value=sym.atomic(base), attr=node.attr)
        raise Refuse(codes.UnsupportedStatement, f"attribute '{attr}' of a non-tensor", node)

    def eval_subscript(self, node: cst.Subscript, frame: Frame) -> Value:
        base = self.eval(node.value, frame)
        if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            index = self.eval(node.slice[0].slice.value, frame)
            position = sym.literal_value(index) if isinstance(index, cst.BaseExpression) else None
            if isinstance(base, NeedsInputGrad):
                return _TRUE
            if (
                self.mask is not None
                and isinstance(base, cst.BaseExpression)
                and isinstance(index, cst.BaseExpression)
                and sym.code(index) == self.mask
            ):
                return base
            if isinstance(base, tuple) and isinstance(position, int):
                try:
                    return base[position]
                except IndexError:
                    raise Refuse(codes.UnsupportedStatement, "index out of range", node) from None
            if isinstance(base, Table) and base.get(position) is not None:
                return base.get(position)  # type: ignore[return-value]
            if isinstance(base, cst.BaseExpression) and ir.is_reference(base):
                return self.state.subscript(base, index, node)
            saved = expressions.scalar_from_tensor(base, position)
            if saved is not None:
                return saved
        raise Refuse(codes.BackwardNotElementwise, f"indexing '{sym.code(node)}'", node)

    def eval_call(self, node: cst.Call, frame: Frame) -> Value:
        if any(a.star for a in node.args):
            raise Refuse(codes.UnsupportedStatement, "a call with *args or **kwargs", node)
        callee = self.eval(node.func, frame)
        if isinstance(callee, cst.Call) and ir.callable_parts(callee) is not None:
            callee = self.state.passed_callable(callee, node)  # specialized to a call site's
        if isinstance(callee, Helper):
            return self.inline(callee, node, frame)
        if isinstance(callee, cst.BaseExpression) and ir.is_reference(callee):
            raise Refuse(
                codes.CallableHyperparameter,
                f"calls '{sym.code(node.func)}', read at run time from module or class state",
                node,
            )
        if isinstance(callee, Klass):
            raise Refuse(codes.UnsupportedStatement, "instantiates a class", node)
        if isinstance(callee, (Ctx, NeedsInputGrad, tuple)):
            raise Refuse(codes.UnsupportedStatement, f"calls '{sym.code(node.func)}'", node)
        if isinstance(callee, External):
            func: cst.BaseExpression = sym.dotted(callee.dotted)
        elif isinstance(callee, cst.Name) and callee.value in ew.BUILTINS:
            func = callee
        elif isinstance(callee, cst.Attribute):
            func = callee
        else:
            raise Refuse(
                codes.CallableHyperparameter,
                f"calls '{sym.code(node.func)}', which is not known statically",
                node,
                # A call site that passes a lambda or a module-level function fixes it.
                specializable=isinstance(callee, cst.Name) and callee.value in self.inputs,
            )
        args = [
            arg.with_changes(value=self.expr(self.eval(arg.value, frame), arg.value))
            for arg in node.args
        ]
        if isinstance(func, cst.Attribute) and expressions.in_place(func.attr.value):
            # ``t.exp_()`` is ``t.exp()`` that also rebinds ``t``: model both, in order.
            func = func.with_changes(attr=cst.Name(func.attr.value[:-1]))
            result = expressions.fold(cst.Call(func=func, args=args))
            # ``torch.cos_(t)`` updates its first argument; ``t.cos_()`` its receiver.
            updated = (
                node.args[0].value if isinstance(callee, External) and node.args else node.func
            )
            if isinstance(callee, External) and isinstance(updated, cst.Name):
                self.check_mutable(updated.value, frame, node)
                frame.env[updated.value] = result
            elif isinstance(updated, cst.Attribute) and isinstance(updated.value, cst.Name):
                self.check_mutable(updated.value.value, frame, node)
                frame.env[updated.value.value] = result
            return result
        call = cst.Call(func=func, args=args)
        if dotted_name(func) == "torch.is_tensor" and len(args) == 1:
            # The same test, in a form TorchScript knows (it refines the type).
            return sym.call("isinstance", args[0].value, sym.dotted("torch.Tensor"))
        if dotted_name(func) == "torch.autograd.Variable" and args and args[0].keyword is None:
            # The deprecated wrapper makes a new leaf of the same values: a detached alias.
            return sym.method(args[0].value, "detach")
        if expressions.is_scalar_item(call):
            # ``torch.tensor(h).item()``: a Python number, typed so that TorchScript knows it.
            return sym.call("float", call)
        return expressions.bernoulli_sample(call) or expressions.fold(call)

    def inline(self, helper: Helper, node: cst.Call, frame: Frame) -> Value:
        params = helper.node.params
        if params.star_arg not in (cst.MaybeSentinel.DEFAULT, None) or params.star_kwarg:
            raise Refuse(codes.UnsupportedStatement, "helper with *args/**kwargs", node)
        names = [p for p in (*params.posonly_params, *params.params, *params.kwonly_params)]
        env: dict[str, Value] = {}
        positional = [a for a in node.args if a.keyword is None]
        for param, arg in zip(names, positional, strict=False):
            env[param.name.value] = self.eval(arg.value, frame)
        for arg in node.args:
            if arg.keyword is not None:
                env[arg.keyword.value] = self.eval(arg.value, frame)
        for param in names:
            if param.name.value not in env:
                if param.default is None:
                    raise Refuse(
                        codes.UnsupportedStatement, "helper called without an argument", node
                    )
                env[param.name.value] = self.eval_default(param.default, helper.module)
        if len(positional) > len(names):
            raise Refuse(codes.UnsupportedStatement, "helper called with too many arguments", node)
        if isinstance(helper.node, cst.Lambda):
            return self.eval(helper.node.body, Frame(helper.module, env, frame.forward))
        return self.run(helper.node, Frame(helper.module, env, frame.forward))

    def eval_default(self, default: cst.BaseExpression, module: ModuleInfo) -> Value:
        """A default argument: evaluated once, when the ``def`` ran (``analysis/state.py``)."""
        outer, self.state.definition_time = self.state.definition_time, True
        try:
            return self.eval(default, Frame(module, {}, False))
        finally:
            self.state.definition_time = outer

    def eval_dict(self, node: cst.Dict, frame: Frame) -> Table:
        items = []
        for element in node.elements:
            if not isinstance(element, cst.DictElement):
                raise Refuse(codes.UnsupportedStatement, "'**' in a dict", node)
            key = self.eval(element.key, frame)
            literal = sym.literal_value(key) if isinstance(key, cst.BaseExpression) else None
            if literal is NotImplemented or literal is None:
                raise Refuse(codes.UnsupportedStatement, "a dict key that is not a literal", node)
            items.append((literal, self.eval(element.value, frame)))
        return Table(tuple(items))


_NUMPY_CONSTANTS = {"numpy.pi": "math.pi", "numpy.e": "math.e", "numpy.inf": "math.inf"}

_AUG_TO_BINARY: dict[type[cst.BaseAugOp], type[cst.BaseBinaryOp]] = {
    cst.AddAssign: cst.Add,
    cst.SubtractAssign: cst.Subtract,
    cst.MultiplyAssign: cst.Multiply,
    cst.DivideAssign: cst.Divide,
    cst.PowerAssign: cst.Power,
}


def _only_saves(stmt: cst.If) -> bool:
    """An ``if`` without ``else`` whose body only stores on ctx (``save_for_backward``,
    ``ctx.x = ...``)."""
    if stmt.orelse is not None:
        return False
    for line in stmt.body.body:
        if not isinstance(line, cst.SimpleStatementLine):
            return False
        for small in line.body:
            if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
                name = dotted_name(small.value.func) or ""
                if not name.endswith(".save_for_backward"):
                    return False
            elif isinstance(small, cst.Assign):
                if not all(isinstance(t.target, cst.Attribute) for t in small.targets):
                    return False
            else:
                return False
    return True


def _mentions_requires_grad(node: cst.CSTNode) -> bool:
    found = False

    def visit(n: cst.CSTNode) -> None:
        nonlocal found
        found = found or (isinstance(n, cst.Attribute) and n.attr.value == "requires_grad")

    sym.walk(node, visit)
    return found
