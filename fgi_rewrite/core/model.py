"""Frozen data passed between the stages (discover → index → analyze → emit → rewrite → report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import libcst as cst

from fgi_rewrite.core.codes import Code


class StrEnum(str, Enum):
    """An enum whose members are their string values (as ``enum.StrEnum`` of Python 3.11): they
    compare equal to, print as and serialize to JSON as that string."""

    def __str__(self) -> str:
        return str(self.value)


class Style(StrEnum):
    """How call sites are written (``--style``)."""

    INLINE = "inline"  # FGI statements at each call site
    FUNCTION = "function"  # one generated ``<name>_fgi`` function per surrogate


class VerifyLevel(StrEnum):
    """How far verification goes (``--verify``); each level includes the ones before it."""

    NONE = "none"
    GRAD = "grad"  # values and gradients
    SCRIPT = "script"  # + TorchScript script/save/load
    FULL = "full"  # + torch.compile and torch.export


class Form(StrEnum):
    """Which FGI code is emitted for a surrogate (README, "Higher-order gradients")."""

    FAST = "fast"  # gradient from detached tensors: no second derivative through g
    EXACT = "exact"  # midpoint form: the original's second derivatives too
    # The exact form guarded by ``torch.is_grad_enabled()`` alone, so that forward-mode
    # tangents (inputs that carry one but do not require grad) get g too.
    EXACT_FORWARD_MODE = "exact-forward-mode"


class RunMode(StrEnum):
    """What a run does with the files that change (as black's ``WriteBack``)."""

    WRITE = "write"
    CHECK = "check"
    DIFF = "diff"

    @classmethod
    def from_flags(cls, check: bool, diff: bool) -> RunMode:
        return cls.CHECK if check else cls.DIFF if diff else cls.WRITE


@dataclass(frozen=True)
class Location:
    """A place in a file: 1-based line and column; in a Jupyter notebook, of the code cell
    ``cell`` (its index in the notebook's ``cells``, 0-based, as black's ``--diff`` names it)."""

    path: Path
    line: int
    column: int
    cell: int | None = None

    def __str__(self) -> str:
        cell = f"cell_{self.cell}:" if self.cell is not None else ""
        return f"{self.path}:{cell}{self.line}:{self.column}"


def shown_path(path: Path, root: Path) -> str:
    """A file named inside a message: relative to the project root, so that the message is
    the same on every machine (the report's own locations follow the paths as given)."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


@dataclass(frozen=True)
class Diagnostic:
    code: type[Code]
    location: Location
    message: str
    # A refusal that literal hyperparameters at a call site may lift (a static condition).
    specializable: bool = field(default=False, compare=False)
    subject: str = field(default="", compare=False)  # qualname of the Function concerned

    def render(self) -> str:
        return f"{self.location}: {self.code.code} {self.message}"


@dataclass(frozen=True)
class Param:
    name: str
    default: cst.BaseExpression | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Surrogate:
    """A Function proven to be ``value = f(inputs)`` with gradient ``grad_output * grads[i]``.

    ``value`` and each gradient coefficient are expressions over the parameter names, the
    ``OUTPUT`` placeholder (the forward value), canonical ``torch``/``math`` names and literals.
    """

    qualname: str
    module: str
    location: Location
    params: tuple[Param, ...]
    value: cst.BaseExpression = field(compare=False)
    grads: tuple[cst.BaseExpression | None, ...] = field(compare=False)
    needs_math: bool = False

    # Literal hyperparameters this analysis was specialized to (from one call site), as code.
    constants: tuple[tuple[str, str], ...] = ()
    # Literal arguments of the factory call that built the class (its closure), as code.
    closure: tuple[tuple[str, str], ...] = ()
    # f or g holds ``a if test else b`` on a hyperparameter (branches.py): call sites whose
    # literals fold the test still get the specialized analysis.
    runtime_branches: bool = False
    # The form the run emits (project-wide: the higher-order scan, ``--exact-higher-order``).
    form: Form = Form.FAST
    # Module, class or container state f or g reads at run time (``<M>.ALPHA``, see core/ir.py),
    # as code, each with its static value when first bound ('' when unknown).
    reads: tuple[tuple[str, str], ...] = ()
    # Callables the call site passes and the analysis inlined (``core/ir.CALLABLE`` markers, as
    # code), by their position among the forward's inputs: ``params`` leaves them out.
    callables: tuple[tuple[int, str], ...] = ()

    @property
    def class_qualname(self) -> str:
        return self.qualname.split("[", 1)[0]

    @property
    def short_name(self) -> str:
        return self.class_qualname.rsplit(".", 1)[-1]

    def differentiable(self) -> tuple[int, ...]:
        return tuple(i for i, g in enumerate(self.grads) if g is not None)
