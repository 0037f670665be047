"""How the call sites pass each hyperparameter: a number, a tensor, or a tensor that requires
grad (an ``nn.Parameter``), so that verification passes it the same way.

A custom Function behaves differently for the three: ``ctx.save_for_backward(alpha)`` raises for a
float; a backward that returns ``None`` for an ``nn.Parameter`` leaves its ``.grad`` None, which
the rewrite must keep (a zero ``.grad`` would let weight decay and momentum move it). The rule,
per hyperparameter and call site, read from the source only:

* a number literal, a module constant holding one, or the forward's number default (the argument
  left out): a **number**;
* ``torch.tensor(...)``, ``torch.full(...)`` and the other tensor factories (with
  ``requires_grad=True``: a **parameter**), ``nn.Parameter(...)`` (a **parameter**, unless
  ``requires_grad=False``), or ``self.<name>`` that the enclosing class only ever assigns such an
  expression (``self.alpha = nn.Parameter(torch.tensor(alpha))``, also through
  ``register_buffer``/``register_parameter``): a **tensor** or a **parameter**;
* anything else (a variable, an attribute set from an argument, a call): **unknown**, checked both
  as a number and as a parameter, since a caller may pass either. An integer or a flag is never a
  parameter (only floating tensors require grad).

``kinds_to_check`` turns what the call sites pass into the kinds to verify with, the first being
the kind of the main configurations (and of the TorchScript check). Where the kind is unknown,
the forward may say it: one that saves the hyperparameter with ``save_for_backward``, calls its
methods or has a tensor default takes a tensor, so the guess is a tensor instead of a number. A
number a call site visibly passes stays a number even then: if the original raises with it, the
rewrite cannot be verified as the program uses it (and is not written by default).
"""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst

from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.project.source_module import ModuleInfo, dotted_name
from fgi_rewrite.verify.pure import qualified

NUMBER, TENSOR, PARAMETER, UNKNOWN = "number", "tensor", "parameter", "unknown"
ORDER = (NUMBER, TENSOR, PARAMETER)  # the first kind present is the main configurations' kind

TENSOR_FACTORIES = frozenset(
    {
        "torch.tensor",
        "torch.as_tensor",
        "torch.scalar_tensor",
        "torch.full",
        "torch.ones",
        "torch.zeros",
        "torch.empty",
        "torch.rand",
        "torch.randn",
        "torch.Tensor",
        "torch.FloatTensor",
        "torch.DoubleTensor",
    }
)
PARAMETER_CLASSES = frozenset({"torch.nn.Parameter", "torch.nn.parameter.Parameter"})
# Factories whose value is their first argument (``torch.full`` takes the shape first).
VALUE_FIRST = frozenset({"torch.tensor", "torch.as_tensor", "torch.scalar_tensor"})


def _keyword(call: cst.Call, name: str) -> object:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return sym.literal_value(arg.value)
    return NotImplemented


def tensor_payload(
    module: ModuleInfo, node: cst.BaseExpression
) -> tuple[cst.BaseExpression | None, str]:
    """``(value, kind)`` of a tensor-building expression: ``nn.Parameter(torch.tensor(2.0))`` is
    ``(2.0, parameter)``, ``torch.full((3,), k)`` is ``(k, tensor)``; ``(None, '')`` for
    anything else. The value is the expression the tensor holds when it is known."""
    if not isinstance(node, cst.Call):
        return None, ""
    callee = qualified(module, node.func)
    positional = [a.value for a in node.args if a.keyword is None and not a.star]
    if callee in PARAMETER_CLASSES:
        inner = positional[0] if positional else None
        value = tensor_payload(module, inner)[0] if inner is not None else None
        grad = _keyword(node, "requires_grad")
        kind = TENSOR if grad is False else PARAMETER
        return (value if value is not None else inner), kind
    if callee in TENSOR_FACTORIES:
        kind = PARAMETER if _keyword(node, "requires_grad") is True else TENSOR
        if callee in VALUE_FIRST:
            return (positional[0] if positional else None), kind
        if callee == "torch.full" and len(positional) > 1:
            return positional[1], kind
        return None, kind
    if isinstance(node.func, cst.Attribute) and node.func.attr.value in ("clone", "detach"):
        return tensor_payload(module, node.func.value)  # torch.tensor(k).clone()
    return None, ""


def _registered(module: ModuleInfo, owner: cst.ClassDef) -> dict[str, list[str]]:
    """``self.register_buffer("name", t)`` / ``self.register_parameter("name", p)`` in the
    class's methods: the kinds registered per name."""
    found: dict[str, list[str]] = {}

    class Visitor(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            method = dotted_name(node.func) or ""
            if not method.startswith("self.register_") or len(node.args) < 2:
                return
            name = sym.literal_value(node.args[0].value)
            if not isinstance(name, str):
                return
            kind = PARAMETER if method.endswith("register_parameter") else TENSOR
            if method.endswith(("register_buffer", "register_parameter")):
                found.setdefault(name, []).append(kind)

    owner.visit(Visitor())
    return found


def attribute_kind(module: ModuleInfo, owner: cst.ClassDef | None, attribute: str) -> str:
    """The kind of ``self.<attribute>`` in ``owner``: tensor or parameter when every assignment
    to it in the class builds one (or it is registered as one), else unknown."""
    if owner is None:
        return UNKNOWN
    assigned = module.self_assignments.get(id(owner), {}).get(attribute, [])
    kinds = [tensor_payload(module, value)[1] for value in assigned]
    kinds += _registered(module, owner).get(attribute, [])
    if not kinds or "" in kinds:
        return UNKNOWN
    return PARAMETER if PARAMETER in kinds else TENSOR


def argument_kind(
    module: ModuleInfo, owner: cst.ClassDef | None, node: cst.BaseExpression, is_number: bool
) -> str:
    """The kind of one call-site argument (``is_number``: its value is a known number)."""
    if is_number:
        return NUMBER
    kind = tensor_payload(module, node)[1]
    if kind:
        return kind
    if (
        isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and node.value.value == "self"
    ):
        return attribute_kind(module, owner, node.attr.value)
    return UNKNOWN


def kinds_to_check(passed: Iterable[str], needs_tensor: bool, integer: bool) -> tuple[str, ...]:
    """The kinds to verify a hyperparameter with, the main one first (see the module docstring).
    ``needs_tensor``: the forward cannot take a number; ``integer``: an int or a flag."""
    guess = TENSOR if needs_tensor else NUMBER
    kinds: set[str] = set()
    for kind in passed:
        kinds.update((guess, PARAMETER) if kind == UNKNOWN else (kind,))
    if integer and PARAMETER in kinds:
        kinds.discard(PARAMETER)
        kinds.add(guess)
    return tuple(kind for kind in ORDER if kind in kinds) or (guess,)


def saved_params(forward: cst.FunctionDef | None) -> set[str]:
    """Parameters of ``forward`` it passes to ``ctx.save_for_backward``: they must be tensors."""
    if forward is None:
        return set()
    names = {p.name.value for p in forward.params.params}
    found: set[str] = set()

    class Visitor(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Attribute) and node.func.attr.value == "save_for_backward":
                for arg in node.args:
                    if isinstance(arg.value, cst.Name) and arg.value.value in names:
                        found.add(arg.value.value)

    forward.body.visit(Visitor())
    return found


def call_owners(module: ModuleInfo) -> dict[int, cst.ClassDef]:
    """Per call node (by id): the class whose method contains it (for ``self.<name>``)."""
    found: dict[int, cst.ClassDef] = {}
    classes: list[cst.ClassDef] = []
    depth: list[int] = [0]  # functions entered since the innermost class

    class Visitor(cst.CSTVisitor):
        def visit_ClassDef(self, node: cst.ClassDef) -> None:
            classes.append(node)
            depth.append(0)

        def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
            classes.pop()
            depth.pop()

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            depth[-1] += 1

        def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
            depth[-1] -= 1

        def visit_Call(self, node: cst.Call) -> None:
            if classes and depth[-1] >= 1:  # in a method (or a closure in one: self is seen)
                found[id(node)] = classes[-1]

    module.tree.visit(Visitor())
    return found
