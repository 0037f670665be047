"""What the isolated verification module may run while it is being built: pure functions only.

A module constant, a class attribute, a default value or a decorator of the code copied into the
verification module (``isolate``) is evaluated when that module is executed, before any check
and whatever ``--verify`` level: ``K = 4.0 + 0 * torch.load("x.pkl", weights_only=False)`` would
unpickle a payload during a plain ``--check``. So a call evaluated there must be one of
``PURE_CALLS`` (tensor construction, dtype queries and math of torch, numpy and ``math``) or of
the plain builtins in ``PURE_BUILTINS``; never I/O, loading, hub, subprocess or file access.
Anything else leaves the statement out (a constant is then unresolved: the Function that uses
it cannot be rebuilt in isolation and its rewrite is not verified). ``qualified`` resolves a
name through the module's imports (``from torch import load as l``: ``l`` is ``torch.load``).
"""

from __future__ import annotations

import libcst as cst

from fgi_rewrite.project.source_module import ModuleInfo, dotted_name

# Element-wise math and reductions that exist under the same name in torch and numpy.
_MATH = frozenset(
    {
        "abs",
        "absolute",
        "acos",
        "acosh",
        "add",
        "arccos",
        "arccosh",
        "arcsin",
        "arcsinh",
        "arctan",
        "arctan2",
        "arctanh",
        "asin",
        "asinh",
        "atan",
        "atan2",
        "atanh",
        "ceil",
        "clamp",
        "clip",
        "cos",
        "cosh",
        "cumprod",
        "cumsum",
        "deg2rad",
        "div",
        "divide",
        "dot",
        "erf",
        "erfc",
        "erfinv",
        "exp",
        "exp2",
        "expm1",
        "floor",
        "floor_divide",
        "fmod",
        "heaviside",
        "hypot",
        "lgamma",
        "log",
        "log10",
        "log1p",
        "log2",
        "logaddexp",
        "logsumexp",
        "matmul",
        "max",
        "maximum",
        "mean",
        "min",
        "minimum",
        "mul",
        "multiply",
        "neg",
        "negative",
        "outer",
        "pow",
        "power",
        "prod",
        "rad2deg",
        "reciprocal",
        "remainder",
        "round",
        "rsqrt",
        "sigmoid",
        "sign",
        "sin",
        "sinh",
        "sqrt",
        "square",
        "std",
        "sub",
        "subtract",
        "sum",
        "tan",
        "tanh",
        "true_divide",
        "trunc",
        "var",
        "where",
    }
)
# Building arrays and tensors from values, and asking about dtypes (no file, no storage).
_CONSTRUCTION = frozenset(
    {
        "arange",
        "array",
        "as_tensor",
        "asarray",
        "cat",
        "concatenate",
        "empty",
        "empty_like",
        "eye",
        "finfo",
        "full",
        "full_like",
        "iinfo",
        "linspace",
        "logspace",
        "ones",
        "ones_like",
        "stack",
        "zeros",
        "zeros_like",
    }
)
_TORCH_ONLY = frozenset(
    {
        "Generator",
        "Size",
        "complex",
        "device",
        "erfc",
        "float_power",
        "frac",
        "get_default_dtype",
        "is_floating_point",
        "is_tensor",
        "promote_types",
        "rand",
        "rand_like",
        "randint",
        "randn",
        "randn_like",
        "result_type",
        "scalar_tensor",
        "sgn",
        "tensor",
    }
)
_NUMPY_ONLY = frozenset(
    {"dtype", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "vectorize"}
)
_FUNCTIONAL = frozenset(
    {
        "celu",
        "elu",
        "gelu",
        "hardsigmoid",
        "hardtanh",
        "leaky_relu",
        "logsigmoid",
        "relu",
        "relu6",
        "selu",
        "sigmoid",
        "silu",
        "softplus",
        "softsign",
        "tanh",
        "tanhshrink",
    }
)
PURE_CALLS = frozenset(
    {f"torch.{n}" for n in _MATH | _CONSTRUCTION | _TORCH_ONLY}
    | {f"torch.special.{n}" for n in _MATH | {"expit", "logit", "ndtr", "ndtri"}}
    | {f"torch.nn.functional.{n}" for n in _FUNCTIONAL}
    | {f"numpy.{n}" for n in _MATH | _CONSTRUCTION | _NUMPY_ONLY}
)
# Any ``math.<name>``: the module computes on numbers and touches nothing else.
PURE_MODULES = frozenset({"math"})
# Families of constructors that build plain objects: ``torch.distributions.Normal(0.0, 1.0)``.
PURE_PREFIXES = ("torch.distributions.",)
PURE_BUILTINS = frozenset(
    {
        "abs",
        "bool",
        "complex",
        "dict",
        "divmod",
        "float",
        "frozenset",
        "int",
        "len",
        "list",
        "max",
        "min",
        "pow",
        "range",
        "round",
        "set",
        "str",
        "sum",
        "tuple",
    }
)
# Decorators applied while the module is built (the decorated function itself is not run).
PURE_DECORATORS = frozenset(
    {
        "classmethod",
        "property",
        "staticmethod",
        "numpy.vectorize",
        "torch.autograd.function.once_differentiable",
        "torch.amp.custom_bwd",
        "torch.amp.custom_fwd",
        "torch.compile",
        "torch.compiler.disable",
        "torch.cuda.amp.custom_bwd",
        "torch.cuda.amp.custom_fwd",
        "torch.enable_grad",
        "torch.fx.wrap",
        "torch.inference_mode",
        "torch.jit.export",
        "torch.jit.ignore",
        "torch.jit.script",
        "torch.jit.script_if_tracing",
        "torch.jit.unused",
        "torch.no_grad",
    }
)

PROPERTY_ACCESSORS = frozenset({"setter", "getter", "deleter"})


def qualified(module: ModuleInfo, node: cst.BaseExpression) -> str:
    """The dotted name ``node`` denotes through the module's imports (``np.exp`` is
    ``numpy.exp``; a bare builtin stays bare); '' when it is not a dotted name."""
    dotted = dotted_name(node) or ""
    head, _, rest = dotted.partition(".")
    target = module.imports.get(head)
    if not dotted or target is None:
        return dotted
    return f"{target}.{rest}" if rest else target


def _bound_in_module(module: ModuleInfo, name: str) -> bool:
    """``name`` is the module's own (imported, defined or assigned): not the builtin."""
    return (
        name in module.imports
        or name in module.functions
        or name in module.assignments
        or (name in module.top_classes)
    )


def pure_call(module: ModuleInfo, func: cst.BaseExpression) -> bool:
    """Whether calling ``func`` at definition time is allowed (see the module docstring)."""
    name = qualified(module, func)
    if "." not in name:
        return name in PURE_BUILTINS and not _bound_in_module(module, name)
    root = name.split(".", 1)[0]
    return name in PURE_CALLS or root in PURE_MODULES or name.startswith(PURE_PREFIXES)


def pure_decorator(module: ModuleInfo, decorator: cst.BaseExpression) -> bool:
    """``@torch.jit.script``, ``@torch.amp.custom_fwd(device_type="cuda")``: a known decorator
    (called with pure arguments when it is a call)."""
    name = qualified(module, _callee(decorator))
    if "." not in name and _bound_in_module(module, name):
        return False
    head, _, attribute = name.rpartition(".")
    # ``@value.setter`` of a property defined just above in the same class body.
    accessor = attribute in PROPERTY_ACCESSORS and bool(head) and "." not in head
    accessor = accessor and head not in module.imports
    if not (name in PURE_DECORATORS or accessor):
        return False
    # The decorator's own call (``custom_fwd(device_type=...)``) is known; its arguments are not.
    arguments = decorator.args if isinstance(decorator, cst.Call) else ()
    return all(impure_calls(module, argument.value) == [] for argument in arguments)


def impure_calls(module: ModuleInfo, node: cst.CSTNode) -> list[str]:
    """The calls evaluated when ``node`` is defined that are not pure: everything outside the
    bodies of functions and lambdas (which run only when called), decorators included.
    Returned as code (``torch.load``), for the message that says why a statement is left out."""
    found: list[str] = []

    class Visitor(cst.CSTVisitor):
        def visit_Lambda(self, n: cst.Lambda) -> bool:
            return False  # its body runs only when called

        def visit_FunctionDef(self, n: cst.FunctionDef) -> bool:
            for decorator in n.decorators:
                if not pure_decorator(module, decorator.decorator):
                    found.append("@" + (qualified(module, _callee(decorator.decorator)) or "?"))
            for part in (n.params, n.returns):
                if part is not None:
                    part.visit(self)  # defaults and annotations are evaluated at definition
            return False

        def visit_ClassDef(self, n: cst.ClassDef) -> None:
            for decorator in n.decorators:
                if not pure_decorator(module, decorator.decorator):
                    found.append("@" + (qualified(module, _callee(decorator.decorator)) or "?"))

        def visit_Decorator(self, n: cst.Decorator) -> bool:
            return False  # judged whole above

        def visit_Call(self, n: cst.Call) -> None:
            if not pure_call(module, n.func):
                found.append(qualified(module, n.func) or cst.Module([]).code_for_node(n.func))

        def visit_Await(self, n: cst.Await) -> None:
            found.append("await")

    node.visit(Visitor())
    return found


def _callee(decorator: cst.BaseExpression) -> cst.BaseExpression:
    return decorator.func if isinstance(decorator, cst.Call) else decorator
