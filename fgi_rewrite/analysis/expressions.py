"""Small facts and folds over extracted expressions, shared by the interpreter and the checks:
which call a node is, whether it gives booleans or integers, literal folding, in-place methods.
"""

from __future__ import annotations

import libcst as cst

from fgi_rewrite.analysis import branches
from fgi_rewrite.analysis import elementwise as ew
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.project.source_module import dotted_name


def fold(node: cst.BaseExpression) -> cst.BaseExpression:
    """Constant-fold literal-only comparisons and boolean operations (e.g. ``mode == 1``)."""
    if isinstance(node, (cst.Comparison, cst.BooleanOperation)) or (
        isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not)
    ):
        value = sym.literal_value(node)
        if isinstance(value, bool):
            return cst.Name(str(value))
    if isinstance(node, cst.Comparison):
        return branches.simplify(node)
    return node


_BERNOULLI = frozenset({"torch.distributions.Bernoulli", "torch.distributions.bernoulli.Bernoulli"})


def bernoulli_sample(call: cst.Call) -> cst.BaseExpression | None:
    """``Bernoulli(p).sample()`` (or ``probs=p``) is ``torch.bernoulli(p)``: ``sample`` draws
    exactly that under no_grad, so the same seed gives the same spikes. Logits, a sample shape
    or other options are left as they are (and refused as non-elementwise)."""
    func = call.func
    if call.args or not isinstance(func, cst.Attribute) or func.attr.value != "sample":
        return None
    inner = func.value
    if not isinstance(inner, cst.Call) or dotted_name(inner.func) not in _BERNOULLI:
        return None
    if len(inner.args) != 1 or inner.args[0].star:
        return None
    arg = inner.args[0]
    if arg.keyword is not None and arg.keyword.value != "probs":
        return None
    return sym.call("torch.bernoulli", arg.value)


def in_place(method: str) -> bool:
    return method.endswith("_") and not method.startswith("_") and method[:-1] in ew.TENSOR_METHODS


def call_name(node: cst.Call) -> tuple[str | None, str | None]:
    """(dotted function name, method name) of a call."""
    full = dotted_name(node.func)
    if full is not None and full.split(".")[0] in ("torch", "math"):
        return full, None
    if isinstance(node.func, cst.Attribute):
        return None, node.func.attr.value
    return full, None


def is_boolean(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.Comparison):
        return True
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Not, cst.BitInvert)):
        return True
    if isinstance(node, cst.BinaryOperation) and isinstance(
        node.operator, (cst.BitAnd, cst.BitOr, cst.BitXor)
    ):
        return is_boolean(node.left) or is_boolean(node.right)
    if isinstance(node, cst.Call):
        full, method = call_name(node)
        short = (full or "").rsplit(".", 1)[-1] if full else method
        return short in ew.BOOLEAN_FUNCS
    return False


def non_float(node: cst.BaseExpression) -> bool:
    if is_boolean(node):
        return True
    if isinstance(node, cst.Call):
        _, method = call_name(node)
        return method in ew.INTEGER_CASTS
    return False


def scalar_from_tensor(base: object, position: object) -> cst.BaseExpression | None:
    """``torch.tensor([h])[0]`` is ``torch.tensor(h)``: a hyperparameter saved for backward as a
    one-element tensor (``ctx.save_for_backward(x, torch.tensor([gamma]))``, then
    ``others[0].item()``) keeps its value, dtype included."""
    if not isinstance(base, cst.Call) or sym.code(base.func) not in _TENSOR_CONSTRUCTORS:
        return None
    if not base.args or base.args[0].keyword is not None or position not in (0, -1):
        return None
    data = base.args[0].value
    if not isinstance(data, (cst.Tuple, cst.List)) or len(data.elements) != 1:
        return None
    element = data.elements[0]
    if isinstance(element, cst.StarredElement):
        return None
    first = base.args[0].with_changes(value=element.value)
    return base.with_changes(args=[first, *base.args[1:]])


_TENSOR_CONSTRUCTORS = frozenset({"torch.tensor", "torch.as_tensor"})


def is_scalar_item(call: cst.Call) -> bool:
    """``torch.tensor(h).item()``."""
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value == "item"
        and not call.args
        and isinstance(func.value, cst.Call)
        and sym.code(func.value.func) in _TENSOR_CONSTRUCTORS
    )
