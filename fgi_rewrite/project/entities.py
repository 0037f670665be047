"""What a name refers to, once resolved: the answers the project index gives.

Kept apart from the index so that the analyses that consume resolved names (interpretation,
rewriting) can depend on these small values without depending on how they are found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from fgi_rewrite.project.source_module import ClassInfo, ModuleInfo

FUNCTION_BASES = frozenset(
    {
        "torch.autograd.Function",
        "torch.autograd.function.Function",
        "torch.autograd.function.InplaceFunction",
    }
)


@dataclass(frozen=True)
class External:
    """A name outside the project (``torch.sigmoid``, ``math.pi``)."""

    dotted: str


@dataclass(frozen=True)
class ModuleRef:
    module: ModuleInfo = field(compare=False)


@dataclass(frozen=True)
class ClassRef:
    info: ClassInfo


@dataclass(frozen=True)
class FunctionRef:
    node: cst.FunctionDef = field(compare=False)
    path: Path


@dataclass(frozen=True)
class ApplyRef:
    """``Fn.apply`` of a project class, directly or through any chain of aliases.

    ``closure`` holds the literal arguments of the factory call that built the class (for
    classes defined inside a factory function), as (name, code) pairs."""

    info: ClassInfo
    closure: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ValueRef:
    node: cst.BaseExpression = field(compare=False)
    path: Path


@dataclass(frozen=True)
class Unknown:
    reason: str = ""
    # A parameter of the enclosing function, or an attribute of one: the caller decides.
    from_parameter: bool = False
    # An instance of this project class (``Layer()``, ``Fn()``): its value is not known, but
    # what its ``apply`` or an attribute its methods set to a Function's ``apply`` calls is
    # (``ProjectIndex.instance_attribute``).
    instance_of: ClassInfo | None = None


Entity = External | ModuleRef | ClassRef | FunctionRef | ApplyRef | ValueRef | Unknown
