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
    node: cst.FunctionDef
    module: ModuleInfo


@dataclass(frozen=True)
class Klass:
    info: ClassInfo


Value = cst.BaseExpression | tuple["Value", ...] | Ctx | NeedsInputGrad | Helper | Klass | External


@dataclass
class Frame:
    module: ModuleInfo
    env: dict[str, Value]
    forward: bool  # in-place updates of parameters are side effects only in forward
    params: frozenset[str] = frozenset()
