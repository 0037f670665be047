"""The values the symbolic interpreter manipulates, and its refusal (shared with branches.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from fgi_rewrite.core import codes
from fgi_rewrite.project.entities import External
from fgi_rewrite.project.source_module import ClassInfo, ModuleInfo


class Refuse(Exception):
    def __init__(
        self,
        code: type[codes.Code],
        message: str,
        node: cst.CSTNode | None = None,
        specializable: bool = False,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.node = node
        # True when literal hyperparameters from a call site may make the statement static.
        self.specializable = specializable


@dataclass
class Ctx:
    attrs: dict[str, Value] = field(default_factory=dict)
    saved: tuple[Value, ...] | None = None


@dataclass(frozen=True)
class NeedsInputGrad:
    """``ctx.needs_input_grad``: the injected code only runs when a gradient is needed."""


@dataclass(frozen=True)
class Helper:
    """A function whose body is inlined where it is called: a module-level function, or a lambda
    a call site passes (its body evaluated in ``module``, the call site's)."""

    node: cst.FunctionDef | cst.Lambda
    module: ModuleInfo


@dataclass(frozen=True)
class Klass:
    info: ClassInfo
    # How the original reaches the class at run time (``<M>.Fn``, ``core/ir.py``); None for a
    # class built inside a function, which no call site can name.
    ref: cst.BaseExpression | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ModuleValue:
    """A project module bound to a global (``import pkg.consts as C``): its attributes are read
    through ``ref`` (``<M>.C``); ``bindings`` are the globals read to reach it."""

    info: ModuleInfo = field(compare=False)
    ref: cst.BaseExpression = field(compare=False)
    bindings: tuple[tuple[ModuleInfo, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Table:
    """A dict literal of a module constant, keyed by literal values."""

    items: tuple[tuple[object, Value], ...]

    def get(self, key: object) -> Value | None:
        return next((v for k, v in self.items if k == key and type(k) is type(key)), None)


Value = (
    cst.BaseExpression
    | tuple["Value", ...]
    | Ctx
    | NeedsInputGrad
    | Helper
    | Klass
    | ModuleValue
    | Table
    | External
)


@dataclass
class Frame:
    module: ModuleInfo
    env: dict[str, Value]
    forward: bool  # in-place updates of parameters are side effects only in forward
    params: frozenset[str] = frozenset()
