"""Whether an autograd.Function has the shape of a surrogate, read from its source alone.

The analysis proves a surrogate or says why not; this module decides how a Function it cannot
prove is reported. One with the surrogate shape is reported by default (a refusal naming what
was not understood): its forward thresholds (a comparison of values, a rounding, a step, or a
call the analysis could not follow, which may be one), it calls no extension kernel, and its
backward returns, for each input, ``grad_output`` times something (``None`` slots aside). Every
other Function (a kernel, a solver, plumbing, a linear layer) is a note: it is not a surrogate,
so there is nothing to refuse. A Function whose forward or backward only raises
``NotImplementedError`` is an abstract base, never refused itself.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable

import libcst as cst

from fgi_rewrite.analysis import elementwise as ew
from fgi_rewrite.analysis.expressions import call_name
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.project.entities import ApplyRef, ClassRef, External, FunctionRef, Unknown
from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import ModuleInfo, dotted_name

Method = tuple[cst.FunctionDef, ModuleInfo]
_Holds = Callable[[cst.BaseExpression, set[str]], bool]

_KERNEL_FREE_ROOTS = frozenset({"torch", "math", "numpy"})
_BUILTINS = frozenset(dir(builtins))  # ``len``, ``tuple``: never a step the analysis missed
_THRESHOLDS = frozenset(
    {"round", "heaviside", "sign", "floor", "ceil", "gt", "ge", "lt", "le", "bernoulli"}
)
# Comparisons of these say what a value is, not where it lies: ``x.dim() == 4``, ``bias is not
# None``, ``len(shape) > 1``, ``mode == "train"``.
_STRUCTURAL_ATTRIBUTES = frozenset({"shape", "ndim", "dtype", "device", "requires_grad", "is_cuda"})
_STRUCTURAL_CALLS = frozenset(
    {"dim", "size", "numel", "ndimension", "nelement", "len", "isinstance", "hasattr", "type"}
)
# What ``grad_output`` may go through and still be scaled elementwise.
_SCALING_CALLS = frozenset(
    {"clone", "contiguous", "masked_fill", "masked_fill_", "where", "mul", "mul_", "multiply"}
    | {"div", "div_", "divide", "true_divide", "detach", "view_as", "reshape_as", "expand_as"}
)


def surrogate_shaped(index: ProjectIndex, forward: Method, backward: Method | None) -> bool:
    """The surrogate shape (module docstring): the refusals of such a Function are reported."""
    return (
        backward is not None
        and thresholds(index, forward)
        and not calls_kernel(index, forward)
        and scales_grad_output(index, backward)
    )


def is_abstract(func: cst.FunctionDef) -> bool:
    """A body that only raises ``NotImplementedError`` (after a docstring or ``pass``)."""
    body = func.body.body if isinstance(func.body, cst.IndentedBlock) else func.body.body
    statements = [
        s
        for s in body
        if not (
            isinstance(s, cst.SimpleStatementLine)
            and all(
                isinstance(small, cst.Pass)
                or (isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString))
                for small in s.body
            )
        )
    ]
    if len(statements) != 1 or not isinstance(statements[0], cst.SimpleStatementLine):
        return False
    raised = statements[0].body[0]
    if not isinstance(raised, cst.Raise) or raised.exc is None:
        return False
    exc = raised.exc.func if isinstance(raised.exc, cst.Call) else raised.exc
    return dotted_name(exc) == "NotImplementedError"


def looks_like_step(func: cst.FunctionDef) -> bool:
    """A body that compares values, rounds or thresholds (structural tests aside)."""
    found = False

    def visit(n: cst.CSTNode) -> None:
        nonlocal found
        if isinstance(n, cst.Comparison) and not _structural(n):
            found = True
        if isinstance(n, cst.Call):
            full, method = call_name(n)
            found = found or (method or (full or "").rsplit(".", 1)[-1]) in _THRESHOLDS

    sym.walk(func, visit)
    return found


def thresholds(index: ProjectIndex, forward: Method) -> bool:
    """The forward thresholds, itself or in a project helper it calls, calls another
    Function, or calls a name the analysis cannot resolve (which may threshold)."""
    func, module = forward
    if looks_like_step(func):
        return True
    local = _local_names(func)
    for call in _calls(func):
        root = _root(call.func)
        if root is None or root in local or root in _BUILTINS:
            continue
        entity = index.resolve_expr(module, call.func)
        if isinstance(entity, FunctionRef) and looks_like_step(entity.node):
            return True
        if isinstance(entity, Unknown) and not entity.from_parameter:
            return True
        if isinstance(entity, ApplyRef):  # another Function's step (spikingtorch's NoisyStep)
            return True
    return False


def calls_kernel(index: ProjectIndex, forward: Method) -> bool:
    """The forward calls something besides torch, math, numpy, builtins and project functions:
    an extension kernel, or a class it instantiates (also in parameter defaults)."""
    func, module = forward
    for call in _calls(func):
        root = _root(call.func)
        if root is None or root in ew.BUILTINS:
            continue
        entity = index.resolve_name(module, root)
        if isinstance(entity, External) and entity.dotted.split(".")[0] not in _KERNEL_FREE_ROOTS:
            return True
        if isinstance(entity, ClassRef):
            return True
    return False


def scales_grad_output(index: ProjectIndex, backward: Method) -> bool:
    """Every gradient the backward returns (``None`` aside, at least one) is ``grad_output``
    times something: ``grad_output`` through elementwise operations and masks
    (``grad_output.clone()`` with masked assignments, ``torch.where``), or a product with a
    factor that is ``grad_output`` mixed by one operation (``grad_output.sum(...)``,
    ``grad_output @ m``, ``torch.roll(grad_output)``): a surrogate whose gradient cannot be
    injected, which is reported. A gradient built otherwise (``grad_output.mm(w)``, a batch
    norm's ``grad_output - grad_output.mean(0)``, a kernel's call) is not a surrogate's."""
    func, module = backward
    params = [*func.params.posonly_params, *func.params.params]
    if len(params) < 2:
        return False
    grads = {p.name.value for p in params[1:]}
    assigned = _assignments(func)
    reading = _Reading(index, module, _closure(grads, assigned, _mentions_any), grads)
    reading.settle(assigned)
    slots = [
        slot
        for value in _returned(func)
        for slot in ([e.value for e in value.elements] if isinstance(value, cst.Tuple) else [value])
        if not (isinstance(slot, cst.Name) and slot.value == "None")
    ]
    return bool(slots) and all(reading.is_scaled(s) for s in slots)


def _mentions_any(value: cst.BaseExpression, names: set[str]) -> bool:
    return bool(sym.names_in(value) & names)


class _Reading:
    """How values of a backward relate to ``grad_output``: ``derived`` names mention it,
    ``scaled`` names hold it times something, ``mixed`` names hold it mixed by one operation."""

    def __init__(
        self, index: ProjectIndex, module: ModuleInfo, derived: set[str], grads: set[str]
    ) -> None:
        self.index, self.module, self.derived = index, module, derived
        self.scaled: set[str] = set(grads)
        self.mixed: set[str] = set()

    def settle(self, assigned: dict[str, list[cst.BaseExpression]]) -> None:
        """Grow ``scaled`` and ``mixed`` by the names assigned such values, to a fixed point."""
        while True:
            before = len(self.scaled) + len(self.mixed)
            for name, values in assigned.items():
                if name not in self.scaled and any(self.is_scaled(v) for v in values):
                    self.scaled.add(name)
                if name not in self.mixed and any(self.is_mixed(v) for v in values):
                    self.mixed.add(name)
            if len(self.scaled) + len(self.mixed) == before:
                return

    def mentions(self, node: cst.BaseExpression) -> bool:
        return _mentions_any(node, self.derived)

    def is_scaled(self, n: cst.BaseExpression) -> bool:
        if isinstance(n, cst.Name):
            return n.value in self.scaled
        if isinstance(n, cst.BinaryOperation):
            if isinstance(n.operator, (cst.Multiply, cst.Divide)):
                return any(self.is_scaled(o) or self.is_mixed(o) for o in (n.left, n.right))
            if isinstance(n.operator, (cst.Add, cst.Subtract)):
                with_grad = [o for o in (n.left, n.right) if self.mentions(o)]
                return bool(with_grad) and all(self.is_scaled(o) for o in with_grad)
            return isinstance(n.operator, cst.Power) and self.is_scaled(n.left)
        if isinstance(n, cst.UnaryOperation):
            return self.is_scaled(n.expression)
        if isinstance(n, cst.IfExp):
            return self.is_scaled(n.body) or self.is_scaled(n.orelse)
        if isinstance(n, cst.Call):
            operands = _operands(n)
            if not any(self.is_scaled(o) or self.is_mixed(o) for o in operands):
                return False
            return _elementwise_call(n) or self._helper(n)
        return False

    def is_mixed(self, n: cst.BaseExpression) -> bool:
        if isinstance(n, cst.Name):
            return n.value in self.mixed
        if isinstance(n, cst.BinaryOperation) and isinstance(n.operator, cst.MatrixMultiply):
            return self.is_scaled(n.left) or self.is_scaled(n.right)
        if isinstance(n, cst.Subscript):
            return self.is_scaled(n.value)
        if isinstance(n, cst.Call):
            return not _elementwise_call(n) and any(self.is_scaled(o) for o in _operands(n))
        return False

    def _helper(self, call: cst.Call) -> bool:
        """A project helper (or a name not resolved) given grad_output: it may scale it."""
        if isinstance(call.func, cst.Attribute):
            return False
        return isinstance(self.index.resolve_expr(self.module, call.func), FunctionRef | Unknown)


def _operands(call: cst.Call) -> list[cst.BaseExpression]:
    operands = [a.value for a in call.args]
    if isinstance(call.func, cst.Attribute):
        operands.append(call.func.value)
    return operands


def _elementwise_call(call: cst.Call) -> bool:
    full, method = call_name(call)
    if full is not None and full.split(".")[0] in ("torch", "math"):
        return full in ew.TORCH_FUNCS or full.rsplit(".", 1)[-1] in _SCALING_CALLS
    if method is not None:
        return method in ew.TENSOR_METHODS or method in _SCALING_CALLS
    return False


def _closure(
    start: set[str],
    assigned: dict[str, list[cst.BaseExpression]],
    holds: _Holds,
) -> set[str]:
    """``start`` and the names assigned a value for which ``holds(value, names)``, to a fixed
    point."""
    names = set(start)
    while True:
        grown = {
            name
            for name, values in assigned.items()
            if name not in names and any(holds(v, names) for v in values)
        }
        if not grown:
            return names
        names |= grown


def _assignments(func: cst.FunctionDef) -> dict[str, list[cst.BaseExpression]]:
    """Every name assigned anywhere in ``func`` (nested blocks too) -> its values; the names of
    a tuple target each get the whole value, an augmented assignment its operand combined with
    the name."""
    found: dict[str, list[cst.BaseExpression]] = {}

    def visit(node: cst.CSTNode) -> None:
        if isinstance(node, cst.Assign):
            for target in node.targets:
                for name in _target_names(target.target):
                    found.setdefault(name, []).append(node.value)
        elif isinstance(node, cst.AnnAssign) and node.value is not None:
            for name in _target_names(node.target):
                found.setdefault(name, []).append(node.value)
        elif isinstance(node, cst.AugAssign) and isinstance(node.target, cst.Name):
            operator = {cst.MultiplyAssign: cst.Multiply(), cst.DivideAssign: cst.Divide()}
            binary = operator.get(type(node.operator), cst.Add())
            value = cst.BinaryOperation(left=node.target, operator=binary, right=node.value)
            found.setdefault(node.target.value, []).append(value)

    sym.walk(func.body, visit)
    return found


def _target_names(target: cst.BaseExpression) -> Iterable[str]:
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from _target_names(element.value)


def _returned(func: cst.FunctionDef) -> list[cst.BaseExpression]:
    """The values of the ``return`` statements of ``func`` itself (not of nested functions)."""
    found: list[cst.BaseExpression] = []

    class Returns(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is func

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_Return(self, node: cst.Return) -> None:
            if node.value is not None:
                found.append(node.value)

    func.visit(Returns())
    return found


def _structural(comparison: cst.Comparison) -> bool:
    operands = [comparison.left, *(t.comparator for t in comparison.comparisons)]
    operators = [t.operator for t in comparison.comparisons]
    if any(isinstance(o, (cst.Is, cst.IsNot, cst.In, cst.NotIn)) for o in operators):
        return True
    return any(_describes(o) for o in operands)


def _describes(node: cst.BaseExpression) -> bool:
    """``None``, a string, a shape, a dtype, a length: an operand of a structural test."""
    if isinstance(node, cst.Name):
        return node.value == "None"
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
        return True
    if isinstance(node, cst.Attribute):
        return node.attr.value in _STRUCTURAL_ATTRIBUTES or _describes(node.value)
    if isinstance(node, cst.Subscript):
        return _describes(node.value)
    if isinstance(node, cst.Call):
        full, method = call_name(node)
        return (method or (full or "").rsplit(".", 1)[-1]) in _STRUCTURAL_CALLS
    return False


def _calls(func: cst.FunctionDef) -> list[cst.Call]:
    found: list[cst.Call] = []
    sym.walk(func, lambda n: found.append(n) if isinstance(n, cst.Call) else None)
    return found


def _root(func: cst.BaseExpression) -> str | None:
    while isinstance(func, cst.Attribute):
        func = func.value
    return func.value if isinstance(func, cst.Name) else None


def _local_names(func: cst.FunctionDef) -> set[str]:
    params = func.params
    names = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    return names | sym.rebound_names(func)
